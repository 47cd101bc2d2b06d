// SPDX-License-Identifier: GPL-2.0

//! The uevent helper (`/proc/sys/kernel/hotplug`, busybox mdev, udev `RUN+=`), coldplug
//! (`apply`) and, where no uevent reaches userspace (a kernel without networking has no
//! uevent socket for mdev or udev, and one without `CONFIG_UEVENT_HELPER` no helper), a
//! watcher that polls sysfs for added functions (`watch`).
//!
//! For an added TEE-capable function the bind gate is set first, before the policy file is
//! even read, so that a policy error or a refusal leaves the function without a driver.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;

use crate::agent::{self, Options, Verdict};
use crate::pci;
use crate::policy::Policy;
use crate::sysfs::Sysfs;

/// Where verdicts of the helper go: stderr and, if it can be opened, the kernel log.
#[derive(Clone, Debug)]
pub struct Log {
    /// Path of the kernel log device, normally `/dev/kmsg`; `None` = stderr only.
    pub kmsg: Option<String>,
}

impl Log {
    /// Logs `line` at `level` (a syslog level, 3 = err, 6 = info).
    pub fn line(&self, level: u8, line: &str) {
        eprintln!("{line}");
        if let Some(path) = &self.kmsg {
            if let Ok(mut kmsg) = OpenOptions::new().write(true).open(path) {
                // One write() per record; a failure to log is not worth failing for.
                let _ = kmsg.write_all(format!("<{level}>{line}\n").as_bytes());
            }
        }
    }
}

/// What the helper did with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not an `add` of a TEE-capable PCI function.
    Ignored,
    /// The verdict for the added function.
    Verdict(String, Verdict),
    /// The policy could not be loaded; the function stays held.
    PolicyError(String, String),
}

/// Handles one uevent whose variables `env` returns. `load` loads the policy; it is only
/// called for events the agent acts on, after the hold is set.
pub fn handle_event(
    sys: &dyn Sysfs,
    env: &dyn Fn(&str) -> Option<String>,
    load: &dyn Fn() -> Result<Policy, String>,
    opts: &Options,
) -> Outcome {
    if env("ACTION").as_deref() != Some("add") || env("SUBSYSTEM").as_deref() != Some("pci") {
        return Outcome::Ignored;
    }
    let bdf = env("PCI_SLOT_NAME")
        .or_else(|| env("DEVPATH").and_then(|p| p.rsplit('/').next().map(str::to_string)));
    let Some(bdf) = bdf.filter(|b| pci::parse_bdf(b).is_ok()) else {
        return Outcome::Ignored;
    };
    if !pci::is_tee_capable(sys, &bdf) {
        return Outcome::Ignored;
    }
    // Best effort here; accept() tries again and reports a failure as a refusal.
    let _ = agent::gate(sys, &bdf);
    let policy = match load() {
        Ok(p) => p,
        Err(e) => return Outcome::PolicyError(bdf, e),
    };
    let opts = Options {
        hold: true,
        ..opts.clone()
    };
    let verdict = agent::accept(sys, &policy, &bdf, &opts);
    Outcome::Verdict(bdf, verdict)
}

/// Applies `policy` to every TEE-capable function present (coldplug), holding each one
/// first. Returns the verdicts in BDF order.
pub fn apply(
    sys: &dyn Sysfs,
    policy: &Policy,
    opts: &Options,
) -> Result<Vec<(String, Verdict)>, String> {
    let opts = Options {
        hold: true,
        ..opts.clone()
    };
    Ok(pci::tee_functions(sys)?
        .into_iter()
        .map(|bdf| {
            let verdict = agent::accept(sys, policy, &bdf, &opts);
            (bdf, verdict)
        })
        .collect())
}

/// Polls for TEE-capable functions and handles each one it has not seen before as the
/// uevent helper handles an `add` (bind gate first, then the policy). A function that goes
/// away is forgotten, so it is handled again should it come back.
#[derive(Debug, Default)]
pub struct Watcher {
    seen: BTreeSet<String>,
}

impl Watcher {
    /// Returns a watcher that has seen nothing: the first poll handles every function present.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks for new functions once; returns what was done with each.
    pub fn poll(
        &mut self,
        sys: &dyn Sysfs,
        load: &dyn Fn() -> Result<Policy, String>,
        opts: &Options,
    ) -> Result<Vec<Outcome>, String> {
        let present: BTreeSet<String> = pci::tee_functions(sys)?.into_iter().collect();
        let mut outcomes = Vec::new();
        for bdf in present.difference(&self.seen) {
            let env = |name: &str| match name {
                "ACTION" => Some("add".to_string()),
                "SUBSYSTEM" => Some("pci".to_string()),
                "PCI_SLOT_NAME" => Some(bdf.clone()),
                _ => None,
            };
            outcomes.push(handle_event(sys, &env, load, opts));
        }
        self.seen = present;
        Ok(outcomes)
    }
}
