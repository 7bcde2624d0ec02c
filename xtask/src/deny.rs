//! `deny`: licences, advisories, bans and sources of every dependency, checked by cargo-deny
//! against `deny.toml`.
//!
//! No git host is reachable from CI, so RustSec's advisories come from the snapshot in
//! `../shared/advisory-db` (its `crates/` and `rust/` folders; `SNAPSHOT.md` names the commit and
//! its date). cargo-deny only opens a database that is a git checkout, and judges its age by the
//! checkout's HEAD: the snapshot becomes a one-commit repository dated like the snapshot, in the
//! folder cargo-deny uses for RustSec's URL, built once per snapshot and reused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::{self, Result, cmd, root, target_dir};

/// The cargo-deny release `.ci/run` installs; others may read `deny.toml` differently.
pub const CARGO_DENY_VERSION: &str = "0.20.2";
/// Where the advisory snapshot lives, relative to the workspace root.
const SNAPSHOT: &str = "../shared/advisory-db";
/// cargo-deny's folder for `https://github.com/rustsec/advisory-db` (a hash of the URL).
const RUSTSEC_FOLDER: &str = "advisory-db-3157b0e258782691";
/// The variable `deny.toml`'s `db-path` reads.
const DB_ROOT_VAR: &str = "XTASK_ADVISORY_DBS";

/// The `deny` task.
pub fn deny() -> Result {
    require_cargo_deny()?;
    let db_root = advisory_databases()?;
    // Without inclusion graphs: the duplicate-version warnings alone would print 1,500 lines.
    let mut check = cmd(
        "cargo",
        &["deny", "--offline", "--locked", "check", "--hide-inclusion-graph"],
    );
    check.env(DB_ROOT_VAR, &db_root);
    process::run(&mut check).map_err(|e| {
        format!(
            "{e}\n  which dependencies bring a crate in: {DB_ROOT_VAR}={} cargo deny --offline check <check>, \
             or cargo tree --workspace --all-features --target all -i <crate>@<version>",
            db_root.display()
        )
    })
}

fn require_cargo_deny() -> Result {
    let installed = silent_output(&mut cmd("cargo", &["deny", "--version"])).ok_or_else(|| {
        format!(
            "cargo-deny is not installed: cargo install cargo-deny --version {CARGO_DENY_VERSION} --locked \
             (bash .ci/run installs it)"
        )
    })?;
    if installed.split_whitespace().nth(1) != Some(CARGO_DENY_VERSION) {
        eprintln!("warning: {installed} is installed; CI uses cargo-deny {CARGO_DENY_VERSION}");
    }
    Ok(())
}

/// Which RustSec commit the snapshot holds, and that commit's date.
#[derive(Debug, PartialEq)]
struct Snapshot {
    commit: String,
    /// `YYYY-MM-DD`.
    date: String,
}

impl Snapshot {
    /// Reads "commit <40 hex digits> of <YYYY-MM-DD>" from `SNAPSHOT.md`.
    fn parse(about: &str) -> Option<Self> {
        let words: Vec<&str> = about.split_whitespace().collect();
        words.windows(4).find_map(|w| {
            let date = w[3].trim_end_matches(['.', ',']);
            let is_date = date.len() == 10
                && date.char_indices().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        c == '-'
                    } else {
                        c.is_ascii_digit()
                    }
                });
            let is_commit = w[1].len() == 40 && w[1].bytes().all(|b| b.is_ascii_hexdigit());
            (w[0] == "commit" && is_commit && w[2] == "of" && is_date).then(|| Snapshot {
                commit: w[1].to_owned(),
                date: date.to_owned(),
            })
        })
    }

    /// Midnight UTC of the snapshot's day, as git and touch read dates.
    fn timestamp(&self) -> String {
        format!("{}T00:00:00+00:00", self.date)
    }

    /// The subject of the one commit, which also tells a later run what the checkout holds.
    fn subject(&self) -> String {
        format!("RustSec advisory-db {} of {}", self.commit, self.date)
    }
}

/// The folder to give cargo-deny as `db-path`, holding the snapshot as a git checkout.
fn advisory_databases() -> Result<PathBuf> {
    let snapshot_dir = root().join(SNAPSHOT);
    let about_path = snapshot_dir.join("SNAPSHOT.md");
    let about = fs::read_to_string(&about_path).map_err(|e| {
        format!(
            "{}: {e} (the RustSec advisory snapshot must sit beside the checkout, in {SNAPSHOT})",
            about_path.display()
        )
    })?;
    let snapshot = Snapshot::parse(&about).ok_or_else(|| {
        format!(
            "{}: no \"commit <hash> of <YYYY-MM-DD>\" line",
            about_path.display()
        )
    })?;
    let db_root = target_dir().join("advisory-dbs");
    let checkout = db_root.join(RUSTSEC_FOLDER);
    if head_subject(&checkout).as_deref() == Some(snapshot.subject().as_str()) {
        eprintln!(
            "advisories: RustSec snapshot {} of {} (prepared in {})",
            &snapshot.commit[..12],
            snapshot.date,
            checkout.display()
        );
        return Ok(db_root);
    }
    eprintln!(
        "advisories: preparing RustSec snapshot {} of {} in {}",
        &snapshot.commit[..12],
        snapshot.date,
        checkout.display()
    );
    if checkout.exists() {
        fs::remove_dir_all(&checkout).map_err(|e| format!("{}: {e}", checkout.display()))?;
    }
    fs::create_dir_all(&checkout).map_err(|e| format!("{}: {e}", checkout.display()))?;
    for folder in ["crates", "rust"] {
        let from = snapshot_dir.join(folder);
        if !from.is_dir() {
            return Err(format!("{}: missing from the snapshot", from.display()));
        }
        process::run(cmd("cp", &["-R"]).arg(&from).arg(&checkout))?;
    }
    let git = |args: &[&str]| {
        let mut command = cmd("git", &["-C"]);
        command
            .arg(&checkout)
            .args([
                "-c",
                "user.name=RustSec snapshot",
                "-c",
                "user.email=snapshot@localhost",
            ])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_DATE", snapshot.timestamp())
            .env("GIT_COMMITTER_DATE", snapshot.timestamp());
        command
    };
    process::run(&mut git(&["init", "--quiet", "--initial-branch=main"]))?;
    process::run(&mut git(&["add", "--all"]))?;
    process::run(&mut git(&[
        "commit",
        "--quiet",
        "--no-verify",
        "--message",
        &snapshot.subject(),
    ]))?;
    // cargo-deny takes the later of HEAD's commit date and the HEAD file's mtime as the fetch
    // time: back-date the file too, so the staleness limit in deny.toml counts from the snapshot.
    process::run(
        cmd("touch", &["--no-create", "--date", &snapshot.timestamp()])
            .arg(checkout.join(".git").join("HEAD")),
    )?;
    Ok(db_root)
}

/// The subject of HEAD's commit in `checkout`, if it is a git checkout with a commit.
fn head_subject(checkout: &Path) -> Option<String> {
    if !checkout.join(".git").is_dir() {
        return None;
    }
    let mut log = cmd("git", &["-C"]);
    log.arg(checkout).args(["log", "-1", "--format=%s"]);
    silent_output(&mut log)
}

/// The trimmed stdout of a command that succeeded; its stderr is discarded.
fn silent_output(command: &mut Command) -> Option<String> {
    let output = command.stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_commit_and_date_of_the_snapshot() {
        let about = "Snapshot of RustSec's advisory database (`crates/`, `rust/`, licence CC0-1.0), commit\n\
                     bf5c0d245a92671908518d7e765914d437954ed6 of 2026-08-21. Read-only data.";
        let snapshot = Snapshot::parse(about).unwrap();
        assert_eq!(
            snapshot,
            Snapshot {
                commit: "bf5c0d245a92671908518d7e765914d437954ed6".into(),
                date: "2026-08-21".into()
            }
        );
        assert_eq!(snapshot.timestamp(), "2026-08-21T00:00:00+00:00");
        assert_eq!(
            snapshot.subject(),
            "RustSec advisory-db bf5c0d245a92671908518d7e765914d437954ed6 of 2026-08-21"
        );
    }

    #[test]
    fn a_snapshot_note_without_commit_and_date_is_refused() {
        for about in [
            "",
            "commit bf5c0d2 of 2026-08-21",
            "commit bf5c0d245a92671908518d7e765914d437954ed6 of yesterday",
            "commit bf5c0d245a92671908518d7e765914d437954ed6 from 2026-08-21",
        ] {
            assert_eq!(Snapshot::parse(about), None, "{about:?}");
        }
    }

    #[test]
    fn ci_installs_the_cargo_deny_release_xtask_expects() {
        let script = fs::read_to_string(root().join(".ci/run")).unwrap();
        assert!(
            script.contains(&format!("CARGO_DENY_VERSION={CARGO_DENY_VERSION}")),
            ".ci/run must install cargo-deny {CARGO_DENY_VERSION}"
        );
    }
}
