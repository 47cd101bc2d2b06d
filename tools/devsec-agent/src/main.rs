// SPDX-License-Identifier: GPL-2.0

//! `devsec-agent`: command line front end. See the README for the commands.
//!
//! Exit codes: 0 success (accepted), 1 refusal or operational failure, 2 usage or policy
//! file error.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use devsec_agent::agent::{self, Options};
use devsec_agent::hotplug::{self, Log, Outcome, Watcher};
use devsec_agent::keys;
use devsec_agent::policy::Policy;
use devsec_agent::sysfs::DirSysfs;

/// Userspace acceptance agent for TDISP devices in confidential VMs.
#[derive(Debug, Parser)]
#[command(name = "devsec-agent", version)]
struct Cli {
    /// Root of sysfs.
    #[arg(long, value_name = "DIR", default_value = "/sys", global = true)]
    sysfs: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List TEE-capable functions with lock holder, acceptance and driver.
    List,
    /// Show the decoded evidence of a locked function.
    Show {
        /// MMIO reporting offset to remove from reported addresses [default: 0x10000000000].
        #[arg(long, value_name = "OFFSET", value_parser = parse_u64)]
        offset: Option<u64>,
        /// PCI function, domain:bus:device.function.
        #[arg(value_parser = parse_bdf)]
        bdf: String,
    },
    /// Verify a function against the policy and accept it (locking it if needed).
    Accept {
        /// Policy file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_POLICY)]
        policy: String,
        /// Seconds to wait for a driver to bind after acceptance.
        #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
        timeout: Duration,
        /// PCI function, domain:bus:device.function.
        #[arg(value_parser = parse_bdf)]
        bdf: String,
    },
    /// Apply the policy to every TEE-capable function present (coldplug).
    Apply {
        /// Policy file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_POLICY)]
        policy: String,
        /// Seconds to wait for a driver to bind after each acceptance.
        #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
        timeout: Duration,
    },
    /// Uevent helper: act on ACTION=add SUBSYSTEM=pci from the environment.
    Hotplug {
        /// Policy file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_POLICY)]
        policy: String,
        /// Seconds to wait for a driver to bind after acceptance.
        #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
        timeout: Duration,
        /// Kernel log device verdicts are written to, besides stderr ("" = none).
        #[arg(long, value_name = "PATH", default_value = "/dev/kmsg")]
        kmsg: String,
    },
    /// Poll sysfs for added TEE-capable functions and handle each like `hotplug` (for
    /// systems where no uevent reaches userspace). Runs until killed.
    Watch {
        /// Policy file, read again for every function.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_POLICY)]
        policy: String,
        /// Seconds to wait for a driver to bind after acceptance.
        #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
        timeout: Duration,
        /// Milliseconds between two looks at sysfs.
        #[arg(long, value_name = "MS", default_value = "100")]
        interval: u64,
        /// Kernel log device verdicts are written to, besides stderr ("" = none).
        #[arg(long, value_name = "PATH", default_value = "/dev/kmsg")]
        kmsg: String,
    },
    /// Parse and validate a policy file and print its rules.
    CheckPolicy {
        /// Policy file.
        file: String,
    },
    /// Set the bind gate: no driver binds the function until released.
    Hold {
        /// PCI function, domain:bus:device.function.
        #[arg(value_parser = parse_bdf)]
        bdf: String,
    },
    /// Clear the agent's bind gate and probe the function.
    Release {
        /// PCI function, domain:bus:device.function.
        #[arg(value_parser = parse_bdf)]
        bdf: String,
    },
    /// Print the SHA-384 fingerprint of a file (a DER certificate), as root_cert_sha384
    /// in a policy takes it.
    Fingerprint {
        /// The file.
        file: String,
    },
    /// Add DER root certificates to the TSM's trust anchors (keyring .devsec_tsm).
    Trust {
        /// Remove every trust anchor instead (before adding FILEs, if any).
        #[arg(long)]
        clear: bool,
        /// DER X.509 certificates.
        files: Vec<String>,
    },
}

fn parse_bdf(s: &str) -> Result<String, String> {
    devsec_agent::pci::parse_bdf(s).map(|()| s.to_string())
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("\"{s}\" is not a number"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("\"{s}\" is not a number of seconds"))
}

/// Policy file used when `--policy` is not given, and by the `devsec-hotplug` name.
const DEFAULT_POLICY: &str = "/etc/devsec-agent/policy.toml";

/// Invoked under this name (a symlink), the agent is the uevent helper: the kernel runs
/// `/proc/sys/kernel/hotplug` as `helper SUBSYSTEM` and cannot pass options.
const HOTPLUG_NAME: &str = "devsec-hotplug";

const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Writes `text` to stdout. Unlike `print!`, a closed stdout (a pipe whose reader is gone,
/// a uevent helper without one) is not a panic: the exit code still tells the verdict.
/// `trust`: optionally empties the TSM's trust anchors, then adds `files`.
fn trust(clear: bool, files: &[String]) -> Result<(), String> {
    if !clear && files.is_empty() {
        return Err("trust: give certificate files, or --clear".to_string());
    }
    let serial = keys::tsm_keyring()?;
    if clear {
        keys::clear(serial)?;
        say(&format!("trust anchors in {} cleared\n", keys::KEYRING));
    }
    for file in files {
        let der = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        let key = keys::add_certificate(serial, &der).map_err(|e| format!("{file}: {e}"))?;
        say(&format!(
            "{file}: trust anchor {key:08x} in {}\n",
            keys::KEYRING
        ));
    }
    Ok(())
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("devsec-agent: {message}");
    ExitCode::from(code)
}

/// Logs what the uevent helper or the watcher did with a function.
fn report(log: &Log, outcome: &Outcome) {
    match outcome {
        Outcome::Ignored => {}
        Outcome::Verdict(bdf, verdict) => {
            let level = if verdict.is_accepted() { 6 } else { 4 };
            log.line(level, &verdict.line(bdf));
        }
        Outcome::PolicyError(bdf, e) => log.line(
            3,
            &format!("devsec-agent: {bdf}: refused: policy error, function held: {e}"),
        ),
    }
}

fn main() -> ExitCode {
    let invoked_as = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let cli = if invoked_as.as_deref() == Some(HOTPLUG_NAME) {
        // The kernel's argument (the subsystem) is in the environment too; ignore it.
        Cli::parse_from(["devsec-agent", "hotplug"])
    } else {
        Cli::parse()
    };
    let sys = DirSysfs::new(&cli.sysfs);
    let options = |timeout| Options {
        timeout,
        ..Options::default()
    };
    match cli.command {
        Command::List => match agent::list(&sys) {
            Ok(rows) => {
                say(&agent::format_list(&rows));
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_REFUSED, &e),
        },
        Command::Show { offset, bdf } => match agent::show(&sys, &bdf, offset) {
            Ok(text) => {
                say(&text);
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_REFUSED, &e),
        },
        Command::Accept {
            policy,
            timeout,
            bdf,
        } => {
            let policy = match Policy::load(&policy) {
                Ok(p) => p,
                Err(e) => return fail(EXIT_USAGE, &e),
            };
            let verdict = agent::accept(&sys, &policy, &bdf, &options(timeout));
            say(&format!("{}\n", verdict.line(&bdf)));
            if verdict.is_accepted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
        Command::Apply { policy, timeout } => {
            let policy = match Policy::load(&policy) {
                Ok(p) => p,
                Err(e) => return fail(EXIT_USAGE, &e),
            };
            let verdicts = match hotplug::apply(&sys, &policy, &options(timeout)) {
                Ok(v) => v,
                Err(e) => return fail(EXIT_REFUSED, &e),
            };
            for (bdf, verdict) in &verdicts {
                say(&format!("{}\n", verdict.line(bdf)));
            }
            let accepted = verdicts.iter().filter(|(_, v)| v.is_accepted()).count();
            let refused = verdicts.len() - accepted;
            say(&format!(
                "devsec-agent: {} function(s): {accepted} accepted, {refused} refused\n",
                verdicts.len()
            ));
            if refused == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
        Command::Hotplug {
            policy,
            timeout,
            kmsg,
        } => {
            let log = Log {
                kmsg: (!kmsg.is_empty()).then_some(kmsg),
            };
            let env = |name: &str| std::env::var(name).ok();
            let load = || Policy::load(&policy);
            report(
                &log,
                &hotplug::handle_event(&sys, &env, &load, &options(timeout)),
            );
            // A uevent helper's exit status is not looked at; success keeps mdev quiet.
            ExitCode::SUCCESS
        }
        Command::Watch {
            policy,
            timeout,
            interval,
            kmsg,
        } => {
            let log = Log {
                kmsg: (!kmsg.is_empty()).then_some(kmsg),
            };
            let load = || Policy::load(&policy);
            let mut watcher = Watcher::new();
            loop {
                match watcher.poll(&sys, &load, &options(timeout)) {
                    Ok(outcomes) => outcomes.iter().for_each(|o| report(&log, o)),
                    Err(e) => log.line(3, &format!("devsec-agent: watch: {e}")),
                }
                std::thread::sleep(Duration::from_millis(interval));
            }
        }
        Command::CheckPolicy { file } => match Policy::load(&file) {
            Ok(policy) => {
                say(&format!(
                    "{file}: {} rule(s), first match wins, default refuse\n",
                    policy.rules.len()
                ));
                for rule in &policy.rules {
                    say(&format!("{rule}\n"));
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_USAGE, &e),
        },
        Command::Hold { bdf } => match agent::hold(&sys, &bdf) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(EXIT_REFUSED, &e),
        },
        Command::Release { bdf } => match agent::release(&sys, &bdf, None) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => fail(EXIT_REFUSED, &format!("{bdf}: not held by devsec-agent")),
            Err(e) => fail(EXIT_REFUSED, &e),
        },
        Command::Fingerprint { file } => match std::fs::read(&file) {
            Ok(bytes) => {
                use sha2::{Digest, Sha384};
                let hex = devsec_agent::policy::to_hex(&Sha384::digest(&bytes));
                say(&format!("{hex}\n"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_REFUSED, &format!("{file}: {e}")),
        },
        Command::Trust { clear, files } => match trust(clear, &files) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(EXIT_REFUSED, &e),
        },
    }
}
