// SPDX-License-Identifier: GPL-2.0

//! The binary: exit codes, the verdict line on stdout, `list` on a static tree.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devsec-agent"))
        .args(args)
        .env_remove("ACTION")
        .output()
        .expect("run devsec-agent")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temporary directory, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("devsec-agent-cli-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn put(&self, rel: &str, text: &str) -> String {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn root(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// An unlocked TEE-capable endpoint.
    fn endpoint(&self, bdf: &str) {
        let d = format!("bus/pci/devices/{bdf}");
        self.put(&format!("{d}/vendor"), "0x1b36\n");
        self.put(&format!("{d}/device"), "0x0d5c\n");
        self.put(&format!("{d}/class"), "0xff0000\n");
        self.put(&format!("{d}/driver_override"), "(null)\n");
        self.put(&format!("{d}/tsm/lock"), "\n");
        self.put(&format!("{d}/tsm/accept"), "0\n");
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_policy_exit_codes() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.toml");
    let out = agent(&["check-policy", example]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("rule \"devsec-ep\": accept"));

    let tree = Tree::new("check");
    let bad = tree.put("bad.toml", "[[rule]]\nname = \"x\"\nbogus = 1\n");
    let out = agent(&["check-policy", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bogus"), "{}", stderr(&out));
    let out = agent(&["check-policy", &tree.put("empty.toml", "")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no rules"));
}

#[test]
fn accept_prints_one_verdict_line() {
    let tree = Tree::new("accept");
    tree.endpoint("10000:01:00.0");
    let policy = tree.put("p.toml", "[[rule]]\nname = \"vf\"\ndevice = 0x0d5d\n");
    let out = agent(&[
        "--sysfs",
        &tree.root(),
        "accept",
        "--policy",
        &policy,
        "10000:01:00.0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "devsec-agent: 10000:01:00.0: refused: no rule matches (default refuse)\n"
    );
}

#[test]
fn usage_and_policy_errors_exit_2() {
    let tree = Tree::new("usage");
    let out = agent(&["accept", "10000:01:00.0"]);
    assert_eq!(out.status.code(), Some(2));
    let missing = format!("{}/missing.toml", tree.root());
    let out = agent(&["accept", "--policy", &missing, "10000:01:00.0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let out = agent(&[
        "accept",
        "--policy",
        &missing,
        "--timeout",
        "x",
        "10000:01:00.0",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn list_static_tree() {
    let tree = Tree::new("list");
    tree.endpoint("10000:01:00.0");
    tree.put("bus/pci/devices/0000:00:00.0/vendor", "0x8086\n");
    let out = agent(&["--sysfs", &tree.root(), "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "BDF            ID         CLASS     LOCK  ACCEPTED  DRIVER\n\
         10000:01:00.0  1b36:0d5c  0xff0000  -     0         -\n"
    );
}

#[test]
fn hotplug_ignores_unrelated_events_quietly() {
    let tree = Tree::new("hotplug");
    let out = Command::new(env!("CARGO_BIN_EXE_devsec-agent"))
        .args([
            "--sysfs",
            &tree.root(),
            "hotplug",
            "--policy",
            "/nonexistent",
            "--kmsg",
            "",
        ])
        .env("ACTION", "add")
        .env("SUBSYSTEM", "block")
        .env("DEVPATH", "/devices/virtual/block/loop0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}
