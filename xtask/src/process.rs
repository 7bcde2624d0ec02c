//! Running commands: each is printed before it runs, and a failure names the command.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A task's outcome: the error is the message printed before exiting non-zero.
pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// A command that runs in the workspace root.
pub fn cmd(program: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(root());
    command
}

/// How the command reads when printed: the environment it sets, then the program and its arguments.
pub fn display(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            let key = key.to_string_lossy();
            let value = if is_sensitive(&key) {
                "<redacted>".into()
            } else {
                value?.to_string_lossy()
            };
            Some(format!("{key}={value}"))
        })
        .collect();
    words.push(command.get_program().to_string_lossy().into_owned());
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Variables whose values never reach the terminal (tokens and secrets, even the emulator's).
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD", "AUTHORIZATION"]
        .iter()
        .any(|word| name.contains(word))
}

fn announce(command: &Command) {
    eprintln!("$ {}", display(command));
}

fn spawn_error(command: &Command, e: std::io::Error) -> String {
    let program = command.get_program().to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("`{program}` is not installed (or not on PATH)")
    } else {
        format!("cannot start `{}`: {e}", display(command))
    }
}

fn check_status(command: &Command, status: ExitStatus) -> Result {
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", display(command)))
    }
}

/// Prints the command, runs it with inherited stdio and fails if it exits non-zero.
pub fn run(command: &mut Command) -> Result {
    announce(command);
    let status = command.status().map_err(|e| spawn_error(command, e))?;
    check_status(command, status)
}

/// Prints the command, runs it and returns its trimmed stdout; fails if it exits non-zero.
pub fn read(command: &mut Command) -> Result<String> {
    announce(command);
    read_quietly(command)
}

/// Runs the command without printing it (for polling) and returns its trimmed stdout.
pub fn read_quietly(command: &mut Command) -> Result<String> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| spawn_error(command, e))?;
    check_status(command, output.status)?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether the command runs and exits zero; its output is discarded.
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints the command and starts it in the background.
pub fn spawn(command: &mut Command) -> Result<Child> {
    announce(command);
    command.spawn().map_err(|e| spawn_error(command, e))
}

/// Whether `program` is an executable file on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Polls `ready` every 200 ms until it returns `Ok(true)` or `timeout` passes; `Err` aborts at once.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{what}: not ready after {} s", timeout.as_secs()));
        }
        if interrupted() {
            return Err(format!("{what}: interrupted"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks a background process to stop (SIGTERM), then kills it if it is still running after `grace`.
pub fn stop(name: &str, child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = child.id().to_string();
    eprintln!("$ kill -TERM {pid}   # {name}");
    let asked = succeeds(Command::new("kill").args(["-TERM", &pid]));
    let deadline = Instant::now() + grace;
    while asked && Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{name} did not stop within {} s: killing it", grace.as_secs());
    let _ = child.kill();
    let _ = child.wait();
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT (Ctrl-C) arrived since [`catch_interrupt`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// From now on SIGINT only sets a flag, so that tasks can stop their children and clean up.
///
/// Children still get the terminal's SIGINT (same process group) and keep the default action, since
/// a caught signal is reset to its default by `exec`.
pub fn catch_interrupt() {
    const SIGINT: i32 = 2;
    extern "C" fn on_interrupt(_signal: i32) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal(SIGINT, on_interrupt);
    }
}

/// Background processes, stopped (last started first) when dropped: on success, error or panic.
#[derive(Default)]
pub struct Services(Vec<(&'static str, Child)>);

impl Services {
    /// Starts `command` in the background under `name`.
    pub fn start(&mut self, name: &'static str, command: &mut Command) -> Result<u32> {
        let child = spawn(command)?;
        let pid = child.id();
        self.0.push((name, child));
        Ok(pid)
    }

    /// The first service that has exited, as an error naming it and its status.
    pub fn check_running(&mut self) -> Result {
        for (name, child) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited ({status})"));
            }
        }
        Ok(())
    }

    /// Polls `GET http://{host_port}{path}` until it answers 200; fails early if a service exits.
    pub fn wait_until_ok(&mut self, name: &str, host_port: &str, path: &str) -> Result {
        eprintln!("waiting for {name}: GET http://{host_port}{path} -> 200");
        wait_for(name, Duration::from_secs(60), || {
            self.check_running()?;
            Ok(crate::http::status(host_port, path) == Some(200))
        })
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        while let Some((name, mut child)) = self.0.pop() {
            stop(name, &mut child, Duration::from_secs(15));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_commands_hide_tokens_and_secrets() {
        let mut command = Command::new("wrk");
        command
            .arg("http://127.0.0.1:1")
            .env("TOKEN", "abc")
            .env("GENESYS_CLIENT_SECRET", "s3")
            .env("PORT", "3000");
        let shown = display(&command);
        assert!(!shown.contains("abc") && !shown.contains("s3"), "{shown}");
        assert!(
            shown.contains("TOKEN=<redacted>") && shown.contains("PORT=3000"),
            "{shown}"
        );
        assert!(shown.ends_with("wrk http://127.0.0.1:1"), "{shown}");
    }
}
