//! Python tools in virtual environments under `target/`, never the system Python: each pinned,
//! package by package, by a requirements file, installed from wheels only (no package's own build
//! code runs) and rebuilt only when the file changes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::process::{self, Result, cmd};

/// `<work>/venv` with `requirements` installed, reused while they are unchanged and `program` is
/// there.
pub fn virtual_environment(work: &Path, requirements: &Path, program: &str) -> Result<PathBuf> {
    let venv = work.join("venv");
    let wanted = fs::read_to_string(requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    // A copy of the requirements it was built from, written once the install succeeded.
    let stamp = venv.join("requirements.installed.txt");
    if fs::read_to_string(&stamp).is_ok_and(|built| built == wanted)
        && venv.join("bin").join(program).is_file()
    {
        eprintln!("reusing {}", venv.display());
        return Ok(venv);
    }
    if !process::on_path("python3") {
        return Err("python3 is not installed: apt-get install -y python3 python3-venv".into());
    }
    if venv.exists() {
        // Built from other requirements, or an install that did not finish.
        fs::remove_dir_all(&venv).map_err(|e| format!("{}: {e}", venv.display()))?;
    }
    fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    process::run(cmd("python3", &["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("{e}: the venv module is missing? apt-get install -y python3-venv"))?;
    process::run(
        cmd(venv.join("bin").join("python"), &["-m", "pip", "install"])
            .args(["--disable-pip-version-check", "--quiet", "--no-input"])
            .args(["--only-binary", ":all:", "--requirement"])
            .arg(requirements),
    )?;
    fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(venv)
}

/// The lines of a requirements file that name a package.
#[cfg(test)]
pub fn pins(requirements: &str) -> Vec<&str> {
    requirements
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::root;

    #[test]
    fn every_requirements_file_pins_every_package_exactly() {
        for (file, tool) in [
            ("xtask/schemathesis/requirements.txt", "schemathesis=="),
            ("xtask/oidc/requirements.txt", "Authlib=="),
        ] {
            let requirements = fs::read_to_string(root().join(file)).unwrap();
            let pins = pins(&requirements);
            assert!(pins.iter().any(|p| p.starts_with(tool)), "{file}: {pins:?}");
            for pin in pins {
                let (name, version) = pin
                    .split_once("==")
                    .unwrap_or_else(|| panic!("{file}: {pin}: not pinned with =="));
                assert!(
                    !name.is_empty() && !version.is_empty() && !version.contains([',', ';', '*', ' ']),
                    "{file}: {pin}: one exact version"
                );
            }
        }
    }
}
