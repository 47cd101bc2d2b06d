// SPDX-License-Identifier: GPL-2.0

//! The acceptance flow: match a rule, lock, read evidence, verify, generation-bound accept,
//! release the bind gate, wait for the driver. Also `list`, `show`, `hold`, `release`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::evidence::{format_fields, verify, Evidence};
use crate::pci::{self, dev_dir, Function, HOLD};
use crate::policy::{Action, Policy, Rule, DEFAULT_MMIO_REPORTING_OFFSET};
use crate::sysfs::{errno, errno_name, Sysfs};

/// Options of one acceptance.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long to wait for a driver to bind after acceptance.
    pub timeout: Duration,
    /// Interval between polls of the `driver` link.
    pub poll: Duration,
    /// Set the bind gate (`driver_override` hold, see [`gate`]) before anything else, so a
    /// refused function gets no driver.
    pub hold: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(50),
            hold: false,
        }
    }
}

/// The outcome for one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted under `rule` with evidence `generation`; `driver` bound afterwards.
    Accepted {
        /// The matching rule.
        rule: String,
        /// The evidence generation the acceptance was bound to.
        generation: u64,
        /// The driver bound once the wait ended.
        driver: Option<String>,
    },
    /// Refused, with the reason.
    Refused(String),
}

impl Verdict {
    /// Returns whether the function was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }

    /// Returns the one-line verdict for `bdf`.
    pub fn line(&self, bdf: &str) -> String {
        format!("devsec-agent: {bdf}: {self}")
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted {
                rule,
                generation,
                driver,
            } => {
                write!(f, "accepted (rule \"{rule}\", generation {generation}), ")?;
                match driver {
                    Some(d) => write!(f, "driver {d}"),
                    None => write!(f, "no driver bound"),
                }
            }
            Self::Refused(reason) => write!(f, "refused: {reason}"),
        }
    }
}

/// Sets the bind gate on `bdf`: a `driver_override` no driver matches.
pub fn hold(sys: &dyn Sysfs, bdf: &str) -> Result<(), String> {
    pci::parse_bdf(bdf)?;
    let path = format!("{}/driver_override", dev_dir(bdf));
    sys.write(&path, HOLD.as_bytes())
        .map_err(|e| format!("cannot write {path}: {}", errno_name(&e)))
}

/// Sets the bind gate on `bdf` unless it is accepted already, a driver is bound (the gate
/// would not unbind it) or the gate is set. Returns whether the gate is set afterwards.
pub fn gate(sys: &dyn Sysfs, bdf: &str) -> Result<bool, String> {
    if pci::driver_override(sys, bdf)?.as_deref() == Some(HOLD) {
        return Ok(true);
    }
    if pci::accepted(sys, bdf)? || pci::driver(sys, bdf)?.is_some() {
        return Ok(false);
    }
    hold(sys, bdf)?;
    Ok(true)
}

/// After acceptance: replaces the bind gate on `bdf`, if it is ours, with `driver` (the
/// driver the policy binds to the function, which need not match it by ID) or with no
/// override at all, or sets `driver` as the override where there is none, and asks the PCI
/// core to probe the function. Returns whether the override was changed. An override set
/// by someone else is left alone.
pub fn release(sys: &dyn Sysfs, bdf: &str, driver: Option<&str>) -> Result<bool, String> {
    pci::parse_bdf(bdf)?;
    match pci::driver_override(sys, bdf)?.as_deref() {
        Some(HOLD) => {}
        None if driver.is_some() => {}
        _ => return Ok(false),
    }
    let path = format!("{}/driver_override", dev_dir(bdf));
    let value = driver.map_or_else(|| "\n".to_string(), |d| format!("{d}\n"));
    sys.write(&path, value.as_bytes())
        .map_err(|e| format!("cannot write {path}: {}", errno_name(&e)))?;
    // The kernel re-probed inside the accept write, while the hold was still set. Probe
    // again now. A failure here is not fatal: the wait for the driver tells the outcome.
    let _ = sys.write("bus/pci/drivers_probe", bdf.as_bytes());
    Ok(true)
}

/// Returns the TSM `tsmN` under its policy name (parent device), or `tsmN` itself if
/// it has no parent link.
fn tsm_name(sys: &dyn Sysfs, id: &str) -> Result<String, String> {
    let tsms = pci::tsms(sys)?;
    Ok(tsms
        .into_iter()
        .find(|t| t.id == id)
        .map(|t| if t.name.is_empty() { t.id } else { t.name })
        .unwrap_or_else(|| id.to_string()))
}

/// Chooses the TSM to lock with: the first registered devsec TSM the rule allows.
fn pick_tsm(sys: &dyn Sysfs, rule: &Rule) -> Result<pci::Tsm, String> {
    let tsms = pci::tsms(sys)?;
    let devsec: Vec<&pci::Tsm> = tsms.iter().filter(|t| t.pci_mode == "devsec").collect();
    if devsec.is_empty() {
        return Err("no devsec TSM registered".to_string());
    }
    devsec
        .iter()
        .find(|t| rule.allows_tsm(&t.name))
        .map(|t| (*t).clone())
        .ok_or_else(|| {
            let names: Vec<String> = devsec
                .iter()
                .map(|t| format!("{} ({})", t.id, t.name))
                .collect();
            format!(
                "no allowed TSM: rule allows [{}], registered devsec TSMs: {}",
                rule.tsm.join(","),
                names.join(", ")
            )
        })
}

fn accept_error(err: &std::io::Error) -> String {
    let what = match err.raw_os_error() {
        Some(errno::ENXIO) => "the function is not locked",
        Some(errno::EBUSY) => "a driver is bound",
        Some(errno::EBADMSG) => {
            "the TSM's interface report at accept time differs from the lock-time evidence"
        }
        Some(errno::EINVAL) => "the TSM rejected the interface report (ranges outside the BARs, overlapping, reserved bits or UPDATABLE)",
        _ => "",
    };
    if what.is_empty() {
        format!("accept failed: {}", errno_name(err))
    } else {
        format!("accept failed ({}): {what}", errno_name(err))
    }
}

/// Applies `policy` to `bdf`: the `accept` command, and the per-function step of `apply`
/// and `hotplug`.
///
/// If the agent locked or accepted the function and then refuses it, it unlocks it again
/// (which also un-accepts and unbinds), so a refused function is left unlocked, unaccepted
/// and without a driver. A function someone else locked and the agent refuses before
/// accepting, or someone else accepted, is left as it is.
///
/// The accept is bound to the generation of the evidence that was verified. If the kernel
/// answers ESTALE (the evidence changed in between), the whole read-verify-accept step is
/// retried once; a second ESTALE is a refusal.
pub fn accept(sys: &dyn Sysfs, policy: &Policy, bdf: &str, opts: &Options) -> Verdict {
    let function = match Function::read(sys, bdf) {
        Ok(f) => f,
        Err(e) => return Verdict::Refused(e),
    };
    if !pci::is_tee_capable(sys, bdf) {
        return Verdict::Refused(
            "not TEE-capable (no tsm/lock: no TDISP support or no devsec TSM registered)"
                .to_string(),
        );
    }
    if opts.hold {
        if let Err(e) = gate(sys, bdf) {
            return Verdict::Refused(e);
        }
    }
    let Some(rule) = policy.find(&function) else {
        return Verdict::Refused("no rule matches (default refuse)".to_string());
    };
    if rule.action == Action::Refuse {
        return Verdict::Refused(format!("rule \"{}\" refuses", rule.name));
    }
    // The TSM to unlock with on refusal: set once the agent locked or accepted.
    let mut undo = None;
    match accept_rule(sys, rule, bdf, opts, &mut undo) {
        Ok(verdict) => verdict,
        Err(reason) => {
            let Some(tsm) = undo else {
                return Verdict::Refused(reason);
            };
            let path = format!("{}/tsm/unlock", dev_dir(bdf));
            match sys.write(&path, tsm.as_bytes()) {
                Ok(()) => Verdict::Refused(reason),
                Err(e) => Verdict::Refused(format!(
                    "{reason} (and unlocking failed: {})",
                    errno_name(&e)
                )),
            }
        }
    }
}

fn accept_rule(
    sys: &dyn Sysfs,
    rule: &Rule,
    bdf: &str,
    opts: &Options,
    undo: &mut Option<String>,
) -> Result<Verdict, String> {
    let tsm_dir = format!("{}/tsm", dev_dir(bdf));
    let already_accepted = pci::accepted(sys, bdf)?;
    let holder = match pci::lock_holder(sys, bdf)? {
        Some(id) => id,
        None => {
            if let Some(driver) = pci::driver(sys, bdf)? {
                return Err(format!(
                    "driver {driver} bound before acceptance; unbind it and retry"
                ));
            }
            let tsm = pick_tsm(sys, rule)?;
            sys.write(&format!("{tsm_dir}/lock"), tsm.id.as_bytes())
                .map_err(|e| format!("lock with {} failed: {}", tsm.id, errno_name(&e)))?;
            *undo = Some(tsm.id.clone());
            tsm.id
        }
    };
    let bars = pci::bars(sys, bdf)?;
    let mut generation = None;
    for attempt in 0..2 {
        // The holder may change between attempts (unlocked and locked again); check it
        // every time.
        let current = pci::lock_holder(sys, bdf)?.ok_or("unlocked during acceptance")?;
        if current != holder {
            return Err(format!("lock holder changed from {holder} to {current}"));
        }
        let name = tsm_name(sys, &current)?;
        if !rule.allows_tsm(&name) {
            return Err(format!(
                "locked by {current} ({name}), which rule \"{}\" does not allow",
                rule.name
            ));
        }
        let evidence = Evidence::read(sys, bdf)?;
        verify(rule, &evidence, &bars)?;
        if already_accepted {
            generation = Some(evidence.generation);
            break;
        }
        let value = format!("generation={}", evidence.generation);
        match sys.write(&format!("{tsm_dir}/accept"), value.as_bytes()) {
            Ok(()) => {
                // Accepted by us: a refusal from here on (wrong or missing driver) undoes it,
                // even if someone else took the lock.
                *undo = Some(holder.clone());
                generation = Some(evidence.generation);
                break;
            }
            Err(e) if e.raw_os_error() == Some(errno::ESTALE) && attempt == 0 => continue,
            Err(e) if e.raw_os_error() == Some(errno::ESTALE) => {
                return Err(format!(
                    "evidence changed during acceptance (ESTALE, generation {} no longer current)",
                    evidence.generation
                ))
            }
            Err(e) => return Err(accept_error(&e)),
        }
    }
    let generation = generation.ok_or("evidence changed during acceptance")?;
    release(sys, bdf, rule.driver.as_deref())?;
    let driver = wait_for_driver(sys, rule, bdf, opts)?;
    Ok(Verdict::Accepted {
        rule: rule.name.clone(),
        generation,
        driver,
    })
}

/// Waits up to `opts.timeout` for a driver to bind. With a required driver, another driver
/// or none at all is an error.
fn wait_for_driver(
    sys: &dyn Sysfs,
    rule: &Rule,
    bdf: &str,
    opts: &Options,
) -> Result<Option<String>, String> {
    let deadline = Instant::now() + opts.timeout;
    loop {
        let bound = pci::driver(sys, bdf)?;
        match (&rule.driver, bound) {
            (Some(want), Some(got)) if *want == got => return Ok(Some(got)),
            (Some(want), Some(got)) => {
                return Err(format!(
                    "driver {got} bound but rule \"{}\" requires {want}",
                    rule.name
                ))
            }
            (None, Some(got)) => return Ok(Some(got)),
            (_, None) => {}
        }
        if Instant::now() >= deadline {
            return match &rule.driver {
                Some(want) => Err(format!(
                    "accepted but driver {want} did not bind within {:.1} s",
                    opts.timeout.as_secs_f64()
                )),
                None => Ok(None),
            };
        }
        std::thread::sleep(opts.poll);
    }
}

/// One row of `list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The function.
    pub function: Function,
    /// Lock holder (`tsmN`).
    pub holder: Option<String>,
    /// Whether it is accepted.
    pub accepted: bool,
    /// Bound driver.
    pub driver: Option<String>,
}

/// Collects the `list` rows.
pub fn list(sys: &dyn Sysfs) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for bdf in pci::tee_functions(sys)? {
        rows.push(Row {
            function: Function::read(sys, &bdf)?,
            holder: pci::lock_holder(sys, &bdf)?,
            accepted: pci::accepted(sys, &bdf)?,
            driver: pci::driver(sys, &bdf)?,
        });
    }
    Ok(rows)
}

/// Formats `list` rows as aligned text with a header.
pub fn format_list(rows: &[Row]) -> String {
    let header = ["BDF", "ID", "CLASS", "LOCK", "ACCEPTED", "DRIVER"];
    let mut table: Vec<[String; 6]> = vec![header.map(String::from)];
    for row in rows {
        table.push([
            row.function.bdf.clone(),
            format!("{:04x}:{:04x}", row.function.vendor, row.function.device),
            format!("0x{:06x}", row.function.class),
            row.holder.clone().unwrap_or_else(|| "-".to_string()),
            u8::from(row.accepted).to_string(),
            row.driver.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    let mut widths = [0usize; 6];
    for line in &table {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Formats the evidence of `bdf` for `show`; `offset` defaults to the sample TSM's.
pub fn show(sys: &dyn Sysfs, bdf: &str, offset: Option<u64>) -> Result<String, String> {
    let function = Function::read(sys, bdf)?;
    if !pci::is_tee_capable(sys, bdf) {
        return Err(format!("{bdf}: not TEE-capable (no tsm/lock)"));
    }
    let Some(holder) = pci::lock_holder(sys, bdf)? else {
        return Err(format!(
            "{bdf}: not locked (evidence is readable only while locked; run accept, or write a TSM name to tsm/lock)"
        ));
    };
    let evidence = Evidence::read(sys, bdf).map_err(|e| format!("{bdf}: {e}"))?;
    let offset = offset.unwrap_or(DEFAULT_MMIO_REPORTING_OFFSET);
    let name = tsm_name(sys, &holder)?;
    let mut out = format_fields(&[
        (
            "function",
            format!(
                "{} {:04x}:{:04x} class 0x{:06x}",
                function.bdf, function.vendor, function.device, function.class
            ),
        ),
        ("locked_by", format!("{holder} ({name})")),
        ("accepted", u8::from(pci::accepted(sys, bdf)?).to_string()),
    ]);
    out.push_str(&evidence.describe(offset));
    Ok(out)
}
