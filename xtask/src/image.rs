//! `image`: release binaries in minimal `FROM scratch` images, assembled from the host's files.
//!
//! No registry is needed: the build context (`target/docker/<image>/`) holds a `rootfs/` with the
//! binary, exactly the shared libraries `ldd` lists (and the dynamic loader) at their host paths, the
//! host's CA bundle, a non-root user, and the files each image carries (`config/` for the API and
//! the emulator, the site for the demo). The Dockerfiles in `docker/` copy it onto an empty base.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{self, Result, cmd, root, target_dir};

/// One image: which binary goes in, what it listens on and which config files it carries.
pub struct ImageSpec {
    /// Image repository name.
    pub image: &'static str,
    /// The service's name in `docker-compose.yml`.
    pub service: &'static str,
    /// The release binary copied to `/<binary>`.
    pub binary: &'static str,
    /// The port the service listens on by default.
    pub port: u16,
    /// Which files of `config/` the image carries (never secrets: none live there).
    config: fn(&str) -> bool,
    /// Directories of the repository the image carries: (source, path in the image).
    directories: &'static [(&'static str, &'static str)],
}

/// The emulator; its settings file holds only public test credentials.
pub const MOCK: ImageSpec = ImageSpec {
    image: "mock-genesys",
    service: "mock-genesys",
    binary: "mock-genesys",
    port: 8081,
    config: is_mock_config,
    directories: &[],
};

/// The service, with every environment file but the emulator's.
pub const API: ImageSpec = ImageSpec {
    image: "guest-token-api",
    service: "api",
    binary: "guest-token-api",
    port: 3000,
    config: is_api_config,
    directories: &[],
};

/// The demo page and its static file server; the page's settings come from flags, not `config/`.
pub const DEMO: ImageSpec = ImageSpec {
    image: "guest-token-demo",
    service: "demo",
    binary: "demo-server",
    port: 8080,
    config: no_config,
    directories: &[("demo/site", "site")],
};

/// Every image, in start-up order: the emulator, the service that needs it, the page that calls it.
pub const ALL: [&ImageSpec; 3] = [&MOCK, &API, &DEMO];

/// The emulator's settings files: `mock-genesys.toml`, and `mock-genesys.compose.toml` for compose.
const MOCK_CONFIG_PREFIX: &str = "mock-genesys";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
// Hash of the build context, so `up` rebuilds only what changed.
const FINGERPRINT_LABEL: &str = "guest-token.build-inputs";
const PASSWD: &str = "root:x:0:0:root:/:/nonexistent\napp:x:10001:10001:app:/:/nonexistent\n";
const GROUP: &str = "root:x:0:\napp:x:10001:\n";
// Explicit lookup order: /etc/hosts (mounted by Docker), then DNS (compose service names).
const NSSWITCH: &str = "hosts: files dns\n";

fn is_mock_config(name: &str) -> bool {
    name.starts_with(MOCK_CONFIG_PREFIX) && name.ends_with(".toml")
}

fn is_api_config(name: &str) -> bool {
    name.ends_with(".toml") && !name.starts_with(MOCK_CONFIG_PREFIX)
}

fn no_config(_name: &str) -> bool {
    false
}

/// The workspace version, used as the image tag next to `latest`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl ImageSpec {
    /// `<image>:<workspace version>`.
    pub fn versioned_tag(&self) -> String {
        format!("{}:{VERSION}", self.image)
    }

    fn release_binary(&self) -> PathBuf {
        target_dir().join("release").join(self.binary)
    }

    fn context_dir(&self) -> PathBuf {
        target_dir().join("docker").join(self.image)
    }
}

/// `cargo build --release` of every image's binary (one release build serves images and benchmarks).
pub fn build_release() -> Result {
    process::run(&mut cmd(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "mock-genesys",
            "-p",
            "api",
            "-p",
            "demo",
        ],
    ))
}

/// The `image` task: release build, then every image (rebuilt whatever its state), then their sizes.
pub fn image() -> Result {
    build_release()?;
    for spec in ALL {
        let context = assemble(spec)?;
        build(spec, &context)?;
    }
    print_sizes()
}

/// Builds each image whose inputs changed since it was built (or that is missing); the release
/// binaries must be current.
pub fn ensure_current() -> Result {
    for spec in ALL {
        let context = assemble(spec)?;
        let label = format!("{{{{index .Config.Labels \"{FINGERPRINT_LABEL}\"}}}}");
        let existing = process::read_quietly(Command::new("docker").args([
            "image",
            "inspect",
            "-f",
            &label,
            &spec.versioned_tag(),
        ]))
        .ok();
        if existing.as_deref() == Some(fingerprint(&context)?.as_str()) {
            eprintln!("{} is up to date", spec.versioned_tag());
        } else {
            build(spec, &context)?;
        }
    }
    Ok(())
}

/// Prints `docker image inspect -f '{{.Size}}'` of every image.
pub fn print_sizes() -> Result {
    for spec in ALL {
        let tag = spec.versioned_tag();
        let bytes =
            process::read(Command::new("docker").args(["image", "inspect", "-f", "{{.Size}}", &tag]))?;
        let mb = bytes
            .parse::<f64>()
            .map_err(|e| format!("size of {tag}: {bytes:?}: {e}"))?
            / 1e6;
        println!("{tag}: {bytes} bytes ({mb:.1} MB)");
    }
    Ok(())
}

/// Lays out `target/docker/<image>/` (Dockerfile + rootfs) from the current release binary.
fn assemble(spec: &ImageSpec) -> Result<PathBuf> {
    let binary = spec.release_binary();
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: run `cargo xtask image`",
            binary.display()
        ));
    }
    let context = spec.context_dir();
    if context.exists() {
        fs::remove_dir_all(&context).map_err(|e| format!("cannot clear {}: {e}", context.display()))?;
    }
    let rootfs = context.join("rootfs");
    copy(
        &root().join("docker").join(format!("{}.Dockerfile", spec.image)),
        &context.join("Dockerfile"),
    )?;
    copy(&binary, &rootfs.join(spec.binary))?;
    for library in shared_libraries(&binary)? {
        copy(&library, &under(&rootfs, &library))?;
    }
    let ca_bundle = Path::new(CA_BUNDLE);
    if !ca_bundle.is_file() {
        return Err(format!(
            "{CA_BUNDLE} is missing: apt-get install -y ca-certificates"
        ));
    }
    copy(ca_bundle, &under(&rootfs, ca_bundle))?;
    write(&rootfs.join("etc/passwd"), PASSWD)?;
    write(&rootfs.join("etc/group"), GROUP)?;
    write(&rootfs.join("etc/nsswitch.conf"), NSSWITCH)?;
    let config_dir = root().join("config");
    let entries = fs::read_dir(&config_dir).map_err(|e| format!("{}: {e}", config_dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", config_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if (spec.config)(&name) {
            copy(&entry.path(), &rootfs.join("config").join(&name))?;
        }
    }
    for (source, destination) in spec.directories {
        copy_dir(&root().join(source), &rootfs.join(destination))?;
    }
    Ok(context)
}

fn build(spec: &ImageSpec, context: &Path) -> Result {
    let label = format!("{FINGERPRINT_LABEL}={}", fingerprint(context)?);
    let version = format!("VERSION={VERSION}");
    let latest = format!("{}:latest", spec.image);
    let mut docker = Command::new("docker");
    docker
        .args([
            "build",
            "--label",
            &label,
            "--build-arg",
            &version,
            "-t",
            &spec.versioned_tag(),
            "-t",
            &latest,
        ])
        .arg(context);
    process::run(&mut docker)?;
    // The previous build of this image lost its tags: drop it (only untagged images built here).
    let ours = format!("label={FINGERPRINT_LABEL}");
    process::run(Command::new("docker").args(["image", "prune", "--force", "--filter", &ours]))
}

/// The shared libraries (and loader) the binary needs, from `ldd`.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let mut ldd = Command::new("ldd");
    ldd.arg(binary);
    eprintln!("$ {}", process::display(&ldd));
    let output = ldd
        .output()
        .map_err(|e| format!("cannot run ldd (install libc-bin): {e}"))?;
    // ldd exits 1 for a static binary; the text says which case it is.
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    parse_ldd(&text).map_err(|e| format!("{}: {e}", binary.display()))
}

/// The absolute library paths in `ldd` output; an unresolved library is an error.
fn parse_ldd(output: &str) -> Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not a dynamic executable") || line.contains("statically linked") {
            return Ok(Vec::new());
        }
        if line.contains("not found") {
            return Err(format!("a shared library cannot be found: {line}"));
        }
        // `libc.so.6 => /lib/.../libc.so.6 (0x...)`, or the loader alone: `/lib64/ld-linux-x86-64.so.2 (0x...)`;
        // the vDSO has no file.
        let path = line
            .split_once("=>")
            .map_or(line, |(_, resolved)| resolved)
            .split_whitespace()
            .next();
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// A hash of every file under `dir` (paths and contents): equal fingerprints, equal images.
fn fingerprint(dir: &Path) -> Result<String> {
    fn visit(dir: &Path, base: &Path, hasher: &mut DefaultHasher) -> Result {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(std::result::Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            path.strip_prefix(base).unwrap_or(&path).hash(hasher);
            if path.is_dir() {
                visit(&path, base, hasher)?;
            } else {
                fs::read(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .hash(hasher);
            }
        }
        Ok(())
    }
    let mut hasher = DefaultHasher::new();
    visit(dir, dir, &mut hasher)?;
    Ok(format!("{:016x}", hasher.finish()))
}

/// `host_path` re-rooted under `rootfs` (same absolute path inside the image).
fn under(rootfs: &Path, host_path: &Path) -> PathBuf {
    rootfs.join(host_path.strip_prefix("/").unwrap_or(host_path))
}

fn copy(from: &Path, to: &Path) -> Result {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    // fs::copy follows symlinks (the loader is one): the image gets the file itself at the linked path.
    fs::copy(from, to).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(())
}

/// Copies the files under `from` to the same relative paths under `to`.
fn copy_dir(from: &Path, to: &Path) -> Result {
    let entries = fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", from.display()))?.path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            copy(&path, &target)?;
        }
    }
    Ok(())
}

fn write(path: &Path, contents: &str) -> Result {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resolved_libraries_and_the_loader_but_not_the_vdso() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        let libraries = parse_ldd(output).unwrap();
        assert_eq!(
            libraries,
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_static_binary_needs_no_libraries() {
        assert!(parse_ldd("\tnot a dynamic executable\n").unwrap().is_empty());
        assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
    }

    #[test]
    fn an_unresolved_library_is_an_error_naming_it() {
        let err = parse_ldd("\tlibssl.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n").unwrap_err();
        assert!(err.contains("libssl.so.3"), "{err}");
    }

    #[test]
    fn the_api_image_carries_environment_files_but_not_the_emulators() {
        assert!(is_api_config("default.toml") && is_api_config("production.toml"));
        assert!(!is_api_config("mock-genesys.toml") && !is_api_config("README"));
        assert!(!is_api_config("mock-genesys.compose.toml"));
        assert!(is_mock_config("mock-genesys.toml") && !is_mock_config("default.toml"));
        assert!(is_mock_config("mock-genesys.compose.toml"));
    }

    #[test]
    fn the_demo_image_carries_the_site_and_no_service_settings() {
        assert!(!(DEMO.config)("default.toml") && !(DEMO.config)("mock-genesys.toml"));
        for (source, _) in DEMO.directories {
            assert!(root().join(source).join("index.html").is_file(), "{source}");
        }
    }

    #[test]
    fn host_paths_keep_their_place_under_the_rootfs() {
        assert_eq!(
            under(Path::new("/ctx/rootfs"), Path::new("/lib64/ld.so")),
            Path::new("/ctx/rootfs/lib64/ld.so")
        );
    }
}
