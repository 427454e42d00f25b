// SPDX-License-Identifier: GPL-2.0-or-later
//! Packaging and the Vagrant lab, checked where they cannot run: `make
//! install` into a staging directory, the systemd units with
//! `systemd-analyze verify`, the lab's Vagrantfile with `vagrant validate`
//! and its provisioning scripts with shellcheck.
//!
//! Needs make, systemd (for systemd-analyze), vagrant and shellcheck
//! (tests/setup/install.sh); a missing tool fails the test with the reason.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LDIRECTORD: &str = env!("CARGO_BIN_EXE_ldirectord");

fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run tests/setup/install.sh as root"
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ldir-pkg-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn make_install_stages_binaries_agent_man_pages_examples_and_units() {
    require("make");
    let stage = scratch("stage");
    let target_dir = Path::new(LDIRECTORD).parent().expect("binary dir");
    let out = Command::new("make")
        .args(["-C", ROOT, "install"])
        .arg(format!("DESTDIR={}", stage.display()))
        .arg(format!("TARGET_DIR={}", target_dir.display()))
        .output()
        .expect("make");
    assert!(out.status.success(), "make install:\n{}", text(&out));

    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(stage.join(p))
            .unwrap_or_else(|e| panic!("{p} not installed: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("usr/sbin/ldirectord"), 0o755);
    assert_eq!(mode("usr/sbin/ipvs-ls"), 0o755);
    // Where Pacemaker looks for ocf:ldirector:ldirectord.
    assert_eq!(mode("usr/lib/ocf/resource.d/ldirector/ldirectord"), 0o755);
    assert_eq!(
        fs::read(stage.join("usr/lib/ocf/resource.d/ldirector/ldirectord")).expect("agent"),
        fs::read(Path::new(ROOT).join("ocf/ldirectord")).expect("agent source")
    );
    let man = fs::read_to_string(stage.join("usr/share/man/man8/ldirectord.8"))
        .expect("man page ldirectord.8");
    assert!(
        man.starts_with(".ie") || man.contains(".TH"),
        "not a man page"
    );
    assert!(
        man.contains(".TH ldirectord 8"),
        "not the ldirectord(8) man page"
    );
    assert!(man.contains("\\-\\-check"), "man page lacks --check");
    let man =
        fs::read_to_string(stage.join("usr/share/man/man8/ipvs-ls.8")).expect("man page ipvs-ls.8");
    assert!(man.contains(".TH ipvs-ls 8"), "not the ipvs-ls(8) man page");
    assert!(
        man.contains("\\-\\-connection"),
        "man page lacks --connection"
    );
    let examples: Vec<_> = fs::read_dir(stage.join("usr/share/doc/ldirector/examples"))
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .collect();
    assert!(!examples.is_empty(), "no example config installed");
    for example in &examples {
        let out = Command::new(LDIRECTORD)
            .arg("--check")
            .arg(example.path())
            .output()
            .expect("ldirectord --check");
        assert!(
            out.status.success(),
            "installed example {} does not validate:\n{}",
            example.path().display(),
            text(&out)
        );
    }
    assert_eq!(mode("lib/systemd/system/ldirectord.service"), 0o644);
    assert_eq!(mode("lib/systemd/system/ldirectord@.service"), 0o644);

    // `make uninstall` removes every file `make install` put there.
    let out = Command::new("make")
        .args(["-C", ROOT, "uninstall"])
        .arg(format!("DESTDIR={}", stage.display()))
        .output()
        .expect("make");
    assert!(out.status.success(), "make uninstall:\n{}", text(&out));
    let left = files_under(&stage);
    assert!(left.is_empty(), "make uninstall left {left:?}");

    // Installing needs a build: without one, make install says so.
    let empty = scratch("nobuild");
    let out = Command::new("make")
        .args(["-C", ROOT, "install"])
        .arg(format!("DESTDIR={}", empty.display()))
        .arg(format!("TARGET_DIR={}", empty.display()))
        .output()
        .expect("make");
    assert!(!out.status.success());
    assert!(text(&out).contains("run 'make' first"), "{}", text(&out));
    let _ = fs::remove_dir_all(&stage);
    let _ = fs::remove_dir_all(&empty);
}

/// Every file (not folder) below `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).expect("read_dir").filter_map(|e| e.ok()) {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn verify_unit(path: &Path) -> Output {
    Command::new("systemd-analyze")
        .arg("verify")
        .arg(path)
        .output()
        .expect("systemd-analyze")
}

#[test]
fn systemd_units_verify() {
    require("systemd-analyze");
    let dir = scratch("units");
    let units = Path::new(ROOT).join("packaging/systemd");
    // The template is verified as an instance, the way systemd loads it.
    for (source, name) in [
        ("ldirectord.service", "ldirectord.service"),
        ("ldirectord@.service", "ldirectord@web.service"),
    ] {
        let unit = fs::read_to_string(units.join(source)).expect("unit");
        let path = dir.join(name);
        fs::write(&path, &unit).expect("write unit");
        let out = verify_unit(&path);
        let report = text(&out);
        assert!(out.status.success(), "{name}:\n{report}");
        // Warnings about other units on this machine are not ours.
        assert!(
            !report.lines().any(|l| l.contains(name)),
            "{name}:\n{report}"
        );
        // The verifier must be able to fail on these files.
        fs::write(&path, unit.replace("Type=notify", "Type=bogus")).expect("write");
        let out = verify_unit(&path);
        assert!(
            text(&out).contains("bogus"),
            "systemd-analyze accepted a broken {name}:\n{}",
            text(&out)
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn vagrant_lab_validates() {
    require("vagrant");
    let home = scratch("vagrant-home");
    let out = Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .current_dir(Path::new(ROOT).join("vagrant"))
        // No user state, no update checks, no network.
        .env("VAGRANT_HOME", &home)
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .env("VAGRANT_NO_PLUGINS", "1")
        .output()
        .expect("vagrant");
    let _ = fs::remove_dir_all(&home);
    assert!(out.status.success(), "vagrant validate:\n{}", text(&out));
    assert!(
        text(&out).contains("validated successfully"),
        "{}",
        text(&out)
    );
}

#[test]
fn vagrant_provisioning_scripts_are_shellcheck_clean() {
    require("shellcheck");
    let dir = Path::new(ROOT).join("vagrant/provision");
    let mut scripts: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("vagrant/provision")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    let vagrantfile =
        fs::read_to_string(Path::new(ROOT).join("vagrant/Vagrantfile")).expect("Vagrantfile");
    for script in &scripts {
        let name = script.file_name().expect("name").to_string_lossy();
        assert!(
            vagrantfile.contains(&format!("provision/{name}")),
            "{name} is not used by the Vagrantfile"
        );
    }
    assert!(
        scripts.len() >= 4,
        "provisioning scripts missing: {scripts:?}"
    );
    let out = Command::new("shellcheck")
        .arg("--severity=style")
        .args(&scripts)
        .arg(Path::new(ROOT).join("tests/ocf/cluster-one-node.sh"))
        .arg(Path::new(ROOT).join("tests/ocf/cluster-two-node-failover.sh"))
        .output()
        .expect("shellcheck");
    assert!(out.status.success(), "shellcheck:\n{}", text(&out));
}
