//! Repository hygiene, checked as tests so `cargo test` (and so CI) enforces it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::{ALL, ImageSpec};
use crate::process::root;

/// The `members` of the root manifest's `[workspace]`.
fn workspace_members() -> Vec<PathBuf> {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let list = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = ["))
        .expect("the root Cargo.toml lists its members on one line: members = [...]");
    let list = list.split(']').next().unwrap();
    list.split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| root().join(m))
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_library_crate_opens_with_a_doc_paragraph() {
    let members = workspace_members();
    assert!(members.len() >= 5, "members parsed from Cargo.toml: {members:?}");
    for member in members {
        let lib = member.join("src/lib.rs");
        let Ok(source) = fs::read_to_string(&lib) else {
            continue;
        };
        let first = source.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        assert!(
            first.starts_with("//! "),
            "{} must open with a `//!` paragraph on what the crate is for",
            lib.display()
        );
    }
}

#[test]
fn no_debugging_leftovers_in_rust_sources() {
    let mut files = Vec::new();
    for member in workspace_members() {
        rust_files(&member, &mut files);
    }
    assert!(!files.is_empty());
    // Spelled in two halves so this file does not match itself.
    let leftovers = [
        concat!("dbg", "!("),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ];
    for file in files {
        let source = fs::read_to_string(&file).unwrap();
        for leftover in leftovers {
            assert!(
                !source.contains(leftover),
                "{} contains {leftover}",
                file.display()
            );
        }
    }
}

#[test]
fn cargo_lock_is_committed() {
    let tracked = Command::new("git")
        .args(["ls-files", "--error-unmatch", "Cargo.lock"])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(
        tracked.status.success(),
        "Cargo.lock must be committed (the binaries are built --locked in CI)"
    );
}

#[test]
fn compose_uses_only_the_images_we_build() {
    let compose = fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let images: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .map(str::trim)
        .collect();
    for image in &images {
        let image = image.trim_matches(['"', '\'']);
        let (name, tag) = image.split_once(':').unwrap_or((image, ""));
        assert!(
            ALL.iter().any(|spec| spec.image == name),
            "{image} is not built by `cargo xtask image`"
        );
        assert_eq!(
            tag, "latest",
            "{image}: `cargo xtask image` tags the version and latest"
        );
    }
    for spec in ALL {
        assert!(
            images
                .iter()
                .any(|i| i.trim_matches(['"', '\'']) == format!("{}:latest", spec.image)),
            "docker-compose.yml runs no {} (every image `cargo xtask image` builds is used)",
            spec.image
        );
    }
}

/// The image's Dockerfile and its instructions: comments dropped, continued lines joined.
fn dockerfile(spec: &ImageSpec) -> (PathBuf, Vec<String>) {
    let path = root().join("docker").join(format!("{}.Dockerfile", spec.image));
    let text = fs::read_to_string(&path).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.strip_suffix('\\') {
            Some(continued) => current.push_str(continued),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    (path, instructions)
}

#[test]
fn images_start_from_scratch_run_as_a_user_and_check_health_without_a_shell() {
    for spec in ALL {
        let (path, instructions) = dockerfile(spec);
        let has = |line: &str| instructions.iter().any(|i| i == line);
        let bases: Vec<&String> = instructions.iter().filter(|i| i.starts_with("FROM ")).collect();
        assert_eq!(
            bases,
            ["FROM scratch"],
            "{}: one stage, `FROM scratch` (no registry to pull another base from)",
            path.display()
        );
        assert!(
            has("USER 10001:10001"),
            "{}: must not run as root",
            path.display()
        );
        assert!(
            has(&format!("EXPOSE {}", spec.port)),
            "{}: EXPOSE {}",
            path.display(),
            spec.port
        );
        let healthcheck = instructions
            .iter()
            .find(|l| l.starts_with("HEALTHCHECK"))
            .expect("a HEALTHCHECK");
        assert!(
            healthcheck.ends_with(&format!("CMD [\"/{}\", \"healthcheck\"]", spec.binary)),
            "{}: exec-form health check with the binary's own subcommand",
            path.display()
        );
        assert!(
            has(&format!("ENTRYPOINT [\"/{}\"]", spec.binary)),
            "{}: exec-form ENTRYPOINT",
            path.display()
        );
    }
}

#[test]
fn compose_checks_health_with_the_binaries_own_subcommand_and_no_shell() {
    let compose = fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    assert!(
        !compose.contains("CMD-SHELL"),
        "the images hold no shell: health checks must be exec form"
    );
    for spec in ALL {
        let check = format!("test: [\"CMD\", \"/{}\", \"healthcheck\"", spec.binary);
        assert!(
            compose.contains(&check),
            "docker-compose.yml: {} needs `{check}...]`",
            spec.service
        );
    }
}

#[test]
fn images_bake_in_no_credentials() {
    for spec in ALL {
        let (path, instructions) = dockerfile(spec);
        let settings = instructions
            .iter()
            .filter(|i| i.starts_with("ENV ") || i.starts_with("ARG "));
        for setting in settings {
            let upper = setting.to_ascii_uppercase();
            assert!(
                !["SECRET", "TOKEN", "PASSWORD", "CLIENT_ID"]
                    .iter()
                    .any(|w| upper.contains(w)),
                "{}: credentials come from the environment at run time, not the image: {setting}",
                path.display()
            );
        }
    }
}

#[test]
fn the_licence_files_match_the_workspace_licence() {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("license = \"MIT OR Apache-2.0\""),
        "the workspace is licensed MIT OR Apache-2.0"
    );
    for (file, title) in [
        ("LICENSE-MIT", "MIT License"),
        (
            "LICENSE-APACHE",
            "Apache License\n                           Version 2.0",
        ),
    ] {
        let text = fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(title), "{file} holds the standard text");
        assert!(
            text.contains("Copyright 2026 The guest-token service contributors")
                || text.contains("Copyright (c) 2026 The guest-token service contributors"),
            "{file} names the copyright holders"
        );
    }
}
