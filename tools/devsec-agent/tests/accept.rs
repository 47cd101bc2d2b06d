// SPDX-License-Identifier: GPL-2.0

//! Evidence decoding from the fixtures, the decision table of `verify()`, and the whole
//! acceptance flow against a simulated kernel.
//!
//! Every negative case starts from evidence that passes and changes one thing, and asserts
//! the specific reason, so removing the check makes the test fail.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use devsec_agent::agent::{self, Options, Verdict};
use devsec_agent::evidence::{chain_root_sha384, decode_measurements, verify, Evidence};
use devsec_agent::hotplug::{self, Outcome};
use devsec_agent::pci::{self, HOLD};
use devsec_agent::policy::{Policy, Rule};
use devsec_agent::sysfs::{errno, DirSysfs, Sysfs};
use devsec_agent::tdisp::{Caps, Report};

const BDF: &str = "10000:01:00.0";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resource() -> String {
    String::from_utf8(fixture("ep0.resource")).unwrap()
}

/// BAR0's start address according to the fixture.
fn bar0_start() -> u64 {
    pci::parse_resource(&resource()).unwrap()[0].start
}

fn evidence() -> Evidence {
    Evidence {
        generation: 7,
        tdisp_version: "1.0".to_string(),
        caps: Caps::decode(&fixture("ep0.tdisp_caps")).unwrap(),
        report: Report::decode(&fixture("ep0.interface_report")).unwrap(),
        measurements: None,
        root_sha384: None,
    }
}

/// A MEASUREMENTS response as devsec_tsm shows it: two DMTF blocks of 48-byte values
/// `a` and `b`, a nonce, no opaque data and a signature.
fn measurements_msg(a: u8, b: u8) -> Vec<u8> {
    let mut record = Vec::new();
    for (index, value_type, fill) in [(1u8, 0u8, a), (2, 1, b)] {
        record.extend_from_slice(&[index, 0x01, 51, 0, value_type, 48, 0]);
        record.extend_from_slice(&[fill; 48]);
    }
    let mut msg = vec![0x12, 0x60, 0, 0, 2];
    msg.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
    msg.extend_from_slice(&record);
    msg.extend_from_slice(&[0x5a; 32]);
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(&[0xee; 384]);
    msg
}

#[test]
fn measurements_decode_and_malformed_ones_are_refused() {
    let msg = measurements_msg(0x11, 0x22);
    assert_eq!(msg.len(), 536);
    let blocks = decode_measurements(&msg).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[1].index, blocks[1].value_type), (2, 1));
    assert_eq!(blocks[1].value, vec![0x22; 48]);
    let mut count = msg.clone();
    count[4] = 3;
    assert!(decode_measurements(&count).is_err());
    let mut size = msg.clone();
    size[10] = 52;
    assert!(decode_measurements(&size).is_err());
    assert!(decode_measurements(&msg[..60]).is_err());
    assert!(decode_measurements(&[0x11, 0x60, 0, 0, 0, 0, 0, 0]).is_err());
    assert_eq!(
        decode_measurements(&[0x12, 0x60, 0, 0, 0, 0, 0, 0]),
        Ok(vec![])
    );
}

#[test]
fn measurements_must_match_the_rule() {
    let bars = pci::parse_resource(&resource()).unwrap();
    let hex = |b: u8| format!("{b:02x}").repeat(48);
    let r = rule(&format!(
        "measurements = {{ 1 = \"{}\", 2 = \"{}\" }}\n",
        hex(0x11),
        hex(0x22)
    ));
    let mut ev = evidence();
    refused_with(&r, &ev, &resource(), "no SPDM measurements");
    ev.measurements = Some(decode_measurements(&measurements_msg(0x11, 0x22)).unwrap());
    assert_eq!(verify(&r, &ev, &bars), Ok(()));
    ev.measurements = Some(decode_measurements(&measurements_msg(0x11, 0x23)).unwrap());
    refused_with(&r, &ev, &resource(), "measurement block 2 differs");
    let only3 = rule(&format!("measurements = {{ 3 = \"{}\" }}\n", hex(0x11)));
    refused_with(&only3, &ev, &resource(), "measurement block 3 missing");
    // A rule without measurements ignores them.
    assert_eq!(verify(&rule(""), &ev, &bars), Ok(()));
}

#[test]
fn measurements_in_the_policy_are_validated() {
    for bad in [
        "measurements = { 0 = \"00\" }",
        "measurements = { 255 = \"00\" }",
        "measurements = { x = \"00\" }",
        "measurements = { 1 = \"0\" }",
        "measurements = { 1 = \"zz\" }",
        "measurements = { 1 = \"\" }",
        "measurements = { 1 = \"+f\" }",
    ] {
        assert!(
            Policy::parse(&format!("{RULE}{bad}\n"), "test").is_err(),
            "{bad}"
        );
    }
}

const RULE: &str = r#"
[[rule]]
name = "ep"
vendor = 0x1b36
device = 0x0d5c
tsm = ["devsec_tsm"]
interface_info_required = ["NO_UPDATE_AFTER_LOCK"]
bars = [0]
private_ranges = 1
sizes = { 0 = 16384 }
"#;

fn policy(extra: &str) -> Policy {
    Policy::parse(&format!("{RULE}{extra}"), "test").unwrap()
}

fn rule(extra: &str) -> Rule {
    policy(extra).rules.remove(0)
}

/// Runs `verify` with the fixture BARs and asserts the refusal reason contains `needle`.
fn refused_with(rule: &Rule, evidence: &Evidence, resource: &str, needle: &str) {
    let bars = pci::parse_resource(resource).unwrap();
    match verify(rule, evidence, &bars) {
        Ok(()) => panic!("accepted, expected refusal with {needle:?}"),
        Err(e) => assert!(e.contains(needle), "reason {e:?} lacks {needle:?}"),
    }
}

/// Returns the fixture `resource` with line `index` replaced.
fn resource_with(index: usize, line: &str) -> String {
    let mut lines: Vec<String> = resource().lines().map(str::to_string).collect();
    lines[index] = line.to_string();
    lines.join("\n") + "\n"
}

// ---------------------------------------------------------------------------------------
// Fixtures.

#[test]
fn fixture_caps_decode() {
    let caps = Caps::decode(&fixture("ep0.tdisp_caps")).unwrap();
    assert_eq!(caps.dsm_caps, 0);
    assert_eq!(
        caps.supported_requests(),
        [
            "GET_TDISP_VERSION",
            "GET_TDISP_CAPABILITIES",
            "LOCK_INTERFACE_REQUEST",
            "GET_DEVICE_INTERFACE_REPORT",
            "GET_DEVICE_INTERFACE_STATE",
            "START_INTERFACE_REQUEST",
            "STOP_INTERFACE_REQUEST",
        ]
    );
    assert_eq!(caps.lock_flags_supported, 0x1f);
    assert!(caps.lock_flag_names().starts_with("NO_FW_UPDATE"));
    assert_eq!(caps.dev_addr_width, 52);
    assert_eq!((caps.num_req_this, caps.num_req_all), (1, 1));
}

#[test]
fn fixture_report_decode() {
    let report = Report::decode(&fixture("ep0.interface_report")).unwrap();
    assert_ne!(report.interface_info & 0x1, 0, "NO_UPDATE_AFTER_LOCK");
    assert_eq!(report.ranges.len(), 1);
    let range = report.ranges[0];
    assert_eq!(range.range_id, 0);
    assert_eq!(range.number_of_pages, 4);
    assert_eq!(range.size(), 16384);
    assert!(range.is_private());
    assert_eq!(range.address(1 << 40), Some(bar0_start()));
    assert!(report.device_specific.is_empty());
}

#[test]
fn fixture_evidence_describes() {
    let text = evidence().describe(1 << 40);
    assert!(text.contains("generation:             7"));
    assert!(text.contains("NO_UPDATE_AFTER_LOCK"));
    let bar = format!("id 0 address 0x{:x} size 0x4000 (4 pages)", bar0_start());
    assert!(text.contains(&bar), "{text}");
}

#[test]
fn malformed_report_is_rejected() {
    let bytes = fixture("ep0.interface_report");
    assert!(Report::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut more = bytes.clone();
    more[12] = 2; // two ranges announced, one present
    assert!(Report::decode(&more).is_err());
    let mut trailing = bytes;
    trailing.push(0);
    assert!(Report::decode(&trailing).is_err());
}

// ---------------------------------------------------------------------------------------
// Decision table.

#[test]
fn matching_evidence_is_accepted() {
    let bars = pci::parse_resource(&resource()).unwrap();
    assert_eq!(verify(&rule(""), &evidence(), &bars), Ok(()));
}

#[test]
fn refuses_wrong_tdisp_version() {
    let mut ev = evidence();
    ev.tdisp_version = "1.1".to_string();
    refused_with(&rule(""), &ev, &resource(), "TDISP version 1.1");
}

#[test]
fn refuses_missing_required_bit() {
    let mut ev = evidence();
    ev.report = {
        let mut bytes = fixture("ep0.interface_report");
        bytes[0] &= !0x1;
        Report::decode(&bytes).unwrap()
    };
    refused_with(
        &rule(""),
        &ev,
        &resource(),
        "lacks required NO_UPDATE_AFTER_LOCK",
    );
}

#[test]
fn refuses_forbidden_bit() {
    let text = RULE.replace(
        "bars = [0]",
        "interface_info_forbidden = [\"DMA_WITHOUT_PASID\"]\nbars = [0]",
    );
    let rule = Policy::parse(&text, "t").unwrap().rules.remove(0);
    refused_with(
        &rule,
        &evidence(),
        &resource(),
        "has forbidden DMA_WITHOUT_PASID",
    );
}

#[test]
fn refuses_bar_size_differing_from_resource() {
    let start = bar0_start();
    let line = format!(
        "0x{start:016x} 0x{:016x} 0x0000000000140204",
        start + 0x7fff
    );
    refused_with(
        &rule(""),
        &evidence(),
        &resource_with(0, &line),
        // The report's range lies inside the larger BAR, which the TSM allows; the rule's
        // size for BAR 0 catches it.
        "BAR 0 size 32768 but the rule requires 16384",
    );
}

#[test]
fn refuses_bar_address_differing_from_resource() {
    let start = bar0_start() + 0x10_0000;
    let line = format!(
        "0x{start:016x} 0x{:016x} 0x0000000000140204",
        start + 0x3fff
    );
    refused_with(
        &rule(""),
        &evidence(),
        &resource_with(0, &line),
        "range 0 is not inside a memory BAR",
    );
}

#[test]
fn refuses_wrong_reporting_offset() {
    let text = RULE.replace("bars = [0]", "mmio_reporting_offset = 0\nbars = [0]");
    let rule = Policy::parse(&text, "t").unwrap().rules.remove(0);
    refused_with(
        &rule,
        &evidence(),
        &resource(),
        "range 0 is not inside a memory BAR",
    );
}

#[test]
fn refuses_unreported_memory_bar() {
    let line = "0x0000002000000000 0x0000002000000fff 0x0000000000040200";
    refused_with(
        &rule(""),
        &evidence(),
        &resource_with(2, line),
        "BAR 2 has no range in the report",
    );
}

#[test]
fn refuses_wrong_bar() {
    let text = RULE
        .replace("bars = [0]", "bars = [2]")
        .replace("sizes = { 0 = 16384 }", "");
    let rule = Policy::parse(&text, "t").unwrap().rules.remove(0);
    refused_with(
        &rule,
        &evidence(),
        &resource(),
        "reported BARs [0] but the rule requires [2]",
    );
}

#[test]
fn refuses_wrong_range_size_in_rule() {
    let text = RULE.replace("sizes = { 0 = 16384 }", "sizes = { 0 = 8192 }");
    let rule = Policy::parse(&text, "t").unwrap().rules.remove(0);
    refused_with(
        &rule,
        &evidence(),
        &resource(),
        "BAR 0 size 16384 but the rule requires 8192",
    );
}

#[test]
fn refuses_missing_sized_bar() {
    let text = RULE
        .replace("bars = [0]\n", "")
        .replace("sizes = { 0 = 16384 }", "sizes = { 2 = 4096 }");
    let rule = Policy::parse(&text, "t").unwrap().rules.remove(0);
    refused_with(&rule, &evidence(), &resource(), "BAR 2 is not reported");
}

#[test]
fn refuses_wrong_private_range_count() {
    let text = RULE.replace("private_ranges = 1", "private_ranges = 0");
    let none = Policy::parse(&text, "t").unwrap().rules.remove(0);
    refused_with(
        &none,
        &evidence(),
        &resource(),
        "1 private range(s) but the rule requires 0",
    );
    // And a range marked NON_TEE is not private.
    let mut ev = evidence();
    let mut bytes = fixture("ep0.interface_report");
    bytes[28] |= 0x4;
    ev.report = Report::decode(&bytes).unwrap();
    refused_with(
        &rule(""),
        &ev,
        &resource(),
        "0 private range(s) but the rule requires 1",
    );
    // Nor is an MSI-X table or PBA range: the TSM does not lock MSI-X.
    for msix in [0x1, 0x2] {
        let mut ev = evidence();
        let mut bytes = fixture("ep0.interface_report");
        bytes[28] |= msix;
        ev.report = Report::decode(&bytes).unwrap();
        assert!(!ev.report.ranges[0].is_private());
        refused_with(
            &rule(""),
            &ev,
            &resource(),
            "0 private range(s) but the rule requires 1",
        );
    }
}

#[test]
fn refuses_updatable_range() {
    let mut ev = evidence();
    let mut bytes = fixture("ep0.interface_report");
    bytes[28] |= 0x8;
    ev.report = Report::decode(&bytes).unwrap();
    refused_with(&rule(""), &ev, &resource(), "range 0 is UPDATABLE");
}

#[test]
fn refuses_reserved_range_attributes() {
    let mut ev = evidence();
    let mut bytes = fixture("ep0.interface_report");
    bytes[28] |= 0x10;
    ev.report = Report::decode(&bytes).unwrap();
    refused_with(&rule(""), &ev, &resource(), "reserved attributes");
}

// ---------------------------------------------------------------------------------------
// Simulated kernel.

/// A sysfs tree in a temporary directory plus the kernel's reactions to the writes the
/// agent makes, following the ABI: lock, generation-bound accept with re-probe, unlock,
/// evidence readable only while locked, driver_override, drivers_probe.
struct Kernel {
    dir: DirSysfs,
    root: PathBuf,
    state: RefCell<State>,
}

struct State {
    generation: u64,
    /// Accept writes that first see the evidence re-collected (generation bumped).
    stale_accepts: u32,
    /// Accept fails with EBADMSG (report changed).
    report_changed: bool,
    /// A driver that binds accepted functions whose override allows it.
    driver: Option<String>,
    /// Reading the SPDM evidence (`tsm/cert_chain`, `tsm/measurements`) fails with this
    /// errno.
    spdm_errno: Option<i32>,
    /// Every write, in order.
    writes: Vec<(String, String)>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Kernel {
    /// A tree with TSMs `tsm0` (parent `devsec_tsm`) and `tsm1` (parent `other_tsm`), and
    /// one TEE-capable function at `BDF`.
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "devsec-agent-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let k = Self {
            dir: DirSysfs::new(&root),
            root,
            state: RefCell::new(State {
                generation: 0,
                stale_accepts: 0,
                report_changed: false,
                driver: Some("devsec_pci".to_string()),
                spdm_errno: None,
                writes: Vec::new(),
            }),
        };
        k.mkdir("bus/pci/drivers/devsec_pci");
        k.put("bus/pci/drivers_probe", "");
        for (id, parent, mode) in [
            ("tsm0", "devsec_tsm", "devsec"),
            ("tsm1", "other_tsm", "devsec"),
        ] {
            k.put(&format!("class/tsm/{id}/pci_mode"), &format!("{mode}\n"));
            symlink(
                format!("../../../devices/faux/{parent}"),
                k.root.join(format!("class/tsm/{id}/device")),
            )
            .unwrap();
        }
        k.add_function(BDF, 0x0d5c);
        k
    }

    fn add_function(&self, bdf: &str, device: u16) {
        let d = format!("bus/pci/devices/{bdf}");
        self.put(&format!("{d}/vendor"), "0x1b36\n");
        self.put(&format!("{d}/device"), &format!("0x{device:04x}\n"));
        self.put(&format!("{d}/class"), "0xff0000\n");
        self.put(&format!("{d}/resource"), &resource());
        self.put(&format!("{d}/driver_override"), "(null)\n");
        self.put(&format!("{d}/tsm/lock"), "\n");
        self.put(&format!("{d}/tsm/accept"), "0\n");
        self.put(&format!("{d}/tsm/unlock"), "");
    }

    fn remove_function(&self, bdf: &str) {
        fs::remove_dir_all(self.root.join(format!("bus/pci/devices/{bdf}"))).unwrap();
    }

    fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.root.join(rel)).unwrap();
    }

    fn put(&self, rel: &str, text: &str) {
        self.put_bytes(rel, text.as_bytes());
    }

    fn put_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn get(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn attr(&self, bdf: &str, attr: &str) -> String {
        self.get(&format!("bus/pci/devices/{bdf}/{attr}"))
            .trim_end()
            .to_string()
    }

    fn bound(&self, bdf: &str) -> Option<String> {
        self.dir
            .link_name(&format!("bus/pci/devices/{bdf}/driver"))
            .unwrap()
    }

    fn bind(&self, bdf: &str, driver: &str) {
        symlink(
            format!("../../../bus/pci/drivers/{driver}"),
            self.root.join(format!("bus/pci/devices/{bdf}/driver")),
        )
        .unwrap();
    }

    fn writes(&self) -> Vec<(String, String)> {
        self.state.borrow().writes.clone()
    }

    fn wrote(&self, suffix: &str, data: &str) -> bool {
        self.writes()
            .iter()
            .any(|(p, d)| p.ends_with(suffix) && d == data)
    }

    /// Locks `bdf` with `tsm` as the kernel would, without going through the agent.
    fn lock(&self, bdf: &str, tsm: &str) {
        self.write(&format!("bus/pci/devices/{bdf}/tsm/lock"), tsm.as_bytes())
            .unwrap();
        self.state.borrow_mut().writes.clear();
    }

    /// The kernel's post-accept re-probe, and drivers_probe.
    fn probe(&self, bdf: &str) {
        let Some(driver) = self.state.borrow().driver.clone() else {
            return;
        };
        if self.bound(bdf).is_some() || self.attr(bdf, "tsm/accept") != "1" {
            // Bound already, or the driver's probe defers until accepted.
            return;
        }
        let over = self.attr(bdf, "driver_override");
        if over == "(null)" || over == driver {
            self.bind(bdf, &driver);
        }
    }

    fn function_of(path: &str) -> Option<(&str, &str)> {
        let rest = path.strip_prefix("bus/pci/devices/")?;
        rest.split_once('/')
    }
}

const EVIDENCE: [&str; 4] = [
    "tsm/generation",
    "tsm/tdisp_version",
    "tsm/tdisp_caps",
    "tsm/interface_report",
];

impl Sysfs for Kernel {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        if let Some((bdf, attr)) = Self::function_of(path) {
            if EVIDENCE.contains(&attr) && self.attr(bdf, "tsm/lock").is_empty() {
                return Err(err(errno::ENXIO));
            }
            if let (Some(code), "tsm/cert_chain" | "tsm/measurements") =
                (self.state.borrow().spdm_errno, attr)
            {
                return Err(err(code));
            }
        }
        self.dir.read(path)
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(data).to_string();
        self.state
            .borrow_mut()
            .writes
            .push((path.to_string(), text.clone()));
        let value = text.trim();
        if path == "bus/pci/drivers_probe" {
            self.probe(value);
            return Ok(());
        }
        let Some((bdf, attr)) = Self::function_of(path) else {
            return self.dir.write(path, data);
        };
        let dev = format!("bus/pci/devices/{bdf}");
        let locked = !self.attr(bdf, "tsm/lock").is_empty();
        match attr {
            "tsm/lock" => {
                if !self.dir.exists(&format!("class/tsm/{value}")) {
                    return Err(err(errno::ENXIO));
                }
                if locked || self.bound(bdf).is_some() {
                    return Err(err(errno::EBUSY));
                }
                let generation = {
                    let mut s = self.state.borrow_mut();
                    s.generation += 1;
                    s.generation
                };
                self.put(&format!("{dev}/tsm/lock"), &format!("{value}\n"));
                self.put(&format!("{dev}/tsm/generation"), &format!("{generation}\n"));
                self.put(&format!("{dev}/tsm/tdisp_version"), "1.0\n");
                self.put_bytes(&format!("{dev}/tsm/tdisp_caps"), &fixture("ep0.tdisp_caps"));
                self.put_bytes(
                    &format!("{dev}/tsm/interface_report"),
                    &fixture("ep0.interface_report"),
                );
                Ok(())
            }
            "tsm/accept" => {
                if !locked {
                    return Err(err(errno::ENXIO));
                }
                if self.bound(bdf).is_some() {
                    return Err(err(errno::EBUSY));
                }
                let generation = {
                    let mut s = self.state.borrow_mut();
                    if s.stale_accepts > 0 {
                        // Evidence re-collected behind the agent's back.
                        s.stale_accepts -= 1;
                        s.generation += 1;
                    }
                    s.generation
                };
                self.put(&format!("{dev}/tsm/generation"), &format!("{generation}\n"));
                match value.strip_prefix("generation=") {
                    Some(n) if n.parse::<u64>().ok() != Some(generation) => {
                        return Err(err(errno::ESTALE))
                    }
                    Some(_) => {}
                    None if value == "1" => {}
                    None => return Err(err(errno::EINVAL)),
                }
                if self.state.borrow().report_changed {
                    return Err(err(errno::EBADMSG));
                }
                self.put(&format!("{dev}/tsm/accept"), "1\n");
                self.probe(bdf);
                Ok(())
            }
            "tsm/unlock" => {
                if !locked {
                    return Err(err(errno::ENXIO));
                }
                if value != self.attr(bdf, "tsm/lock") {
                    return Err(err(errno::EINVAL));
                }
                let _ = fs::remove_file(self.root.join(format!("{dev}/driver")));
                self.put(&format!("{dev}/tsm/accept"), "0\n");
                self.put(&format!("{dev}/tsm/lock"), "\n");
                Ok(())
            }
            "driver_override" => {
                let new = if value.is_empty() { "(null)" } else { value };
                self.put(&format!("{dev}/driver_override"), &format!("{new}\n"));
                Ok(())
            }
            _ => self.dir.write(path, data),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.dir.exists(path)
    }

    fn link_name(&self, path: &str) -> io::Result<Option<String>> {
        self.dir.link_name(path)
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        self.dir.list(path)
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn opts() -> Options {
    Options {
        timeout: Duration::from_millis(200),
        poll: Duration::from_millis(10),
        hold: false,
    }
}

fn refusal(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Refused(reason) => reason.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Asserts the function is unlocked, unaccepted and has no driver.
fn assert_pristine(k: &Kernel) {
    assert_eq!(k.attr(BDF, "tsm/lock"), "");
    assert_eq!(k.attr(BDF, "tsm/accept"), "0");
    assert_eq!(k.bound(BDF), None);
}

// ---------------------------------------------------------------------------------------
// End to end.

#[test]
fn accept_locks_verifies_accepts_and_binds() {
    let k = Kernel::new();
    k.put(
        &format!("bus/pci/devices/{BDF}/driver_override"),
        &format!("{HOLD}\n"),
    );
    let verdict = agent::accept(&k, &policy("driver = \"devsec_pci\"\n"), BDF, &opts());
    assert_eq!(
        verdict,
        Verdict::Accepted {
            rule: "ep".to_string(),
            generation: 1,
            driver: Some("devsec_pci".to_string()),
        }
    );
    assert_eq!(
        verdict.line(BDF),
        "devsec-agent: 10000:01:00.0: accepted (rule \"ep\", generation 1), driver devsec_pci"
    );
    let writes: Vec<(String, String)> = k
        .writes()
        .into_iter()
        .map(|(p, d)| (p.rsplit('/').next().unwrap().to_string(), d))
        .collect();
    let expect = [
        ("lock", "tsm0"),
        ("accept", "generation=1"),
        // The rule's driver replaces the hold, whether or not it matches by ID.
        ("driver_override", "devsec_pci\n"),
        ("drivers_probe", BDF),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_string()))
        .collect();
    assert_eq!(writes, expect);
    assert_eq!(k.attr(BDF, "tsm/accept"), "1");
    assert_eq!(k.attr(BDF, "driver_override"), "devsec_pci");
}

#[test]
fn accept_without_driver_is_still_accepted() {
    let k = Kernel::new();
    k.state.borrow_mut().driver = None;
    let verdict = agent::accept(&k, &policy(""), BDF, &opts());
    assert_eq!(
        verdict.line(BDF),
        "devsec-agent: 10000:01:00.0: accepted (rule \"ep\", generation 1), no driver bound"
    );
}

#[test]
fn required_driver_missing_is_refused_and_unlocked() {
    let k = Kernel::new();
    k.state.borrow_mut().driver = None;
    let verdict = agent::accept(&k, &policy("driver = \"devsec_pci\"\n"), BDF, &opts());
    assert!(refusal(&verdict).contains("driver devsec_pci did not bind"));
    assert!(k.wrote("tsm/unlock", "tsm0"));
    assert_pristine(&k);
}

#[test]
fn wrong_driver_is_refused() {
    let k = Kernel::new();
    k.state.borrow_mut().driver = Some("pci-stub".to_string());
    k.mkdir("bus/pci/drivers/pci-stub");
    let verdict = agent::accept(&k, &policy("driver = \"devsec_pci\"\n"), BDF, &opts());
    assert!(refusal(&verdict).contains("driver pci-stub bound but rule \"ep\" requires devsec_pci"));
    assert_pristine(&k);
}

#[test]
fn failed_verification_unlocks() {
    let k = Kernel::new();
    let p = Policy::parse(&RULE.replace("16384", "8192"), "t").unwrap();
    let verdict = agent::accept(&k, &p, BDF, &opts());
    assert!(refusal(&verdict).contains("size 16384 but the rule requires 8192"));
    assert!(k.wrote("tsm/lock", "tsm0"));
    assert!(!k.writes().iter().any(|(p, _)| p.ends_with("tsm/accept")));
    assert!(k.wrote("tsm/unlock", "tsm0"));
    assert_pristine(&k);
}

#[test]
fn no_matching_rule_is_refused_without_touching_the_function() {
    let k = Kernel::new();
    let p = Policy::parse("[[rule]]\nname = \"vf\"\ndevice = 0x0d5d\n", "t").unwrap();
    let verdict = agent::accept(&k, &p, BDF, &opts());
    assert_eq!(
        verdict.line(BDF),
        "devsec-agent: 10000:01:00.0: refused: no rule matches (default refuse)"
    );
    assert!(k.writes().is_empty());
}

#[test]
fn refuse_rule_is_refused_without_touching_the_function() {
    let k = Kernel::new();
    let p = Policy::parse("[[rule]]\nname = \"no\"\naction = \"refuse\"\n", "t").unwrap();
    assert_eq!(
        refusal(&agent::accept(&k, &p, BDF, &opts())),
        "rule \"no\" refuses"
    );
    assert!(k.writes().is_empty());
}

#[test]
fn not_tee_capable_is_refused() {
    let k = Kernel::new();
    fs::remove_dir_all(k.root.join(format!("bus/pci/devices/{BDF}/tsm"))).unwrap();
    assert!(refusal(&agent::accept(&k, &policy(""), BDF, &opts())).contains("not TEE-capable"));
}

#[test]
fn locks_with_an_allowed_tsm_only() {
    let k = Kernel::new();
    // tsm0 is other_tsm now, tsm1 devsec_tsm: the agent must pick tsm1.
    for (id, parent) in [("tsm0", "other_tsm"), ("tsm1", "devsec_tsm")] {
        let link = k.root.join(format!("class/tsm/{id}/device"));
        fs::remove_file(&link).unwrap();
        symlink(format!("../../../devices/faux/{parent}"), link).unwrap();
    }
    assert!(agent::accept(&k, &policy(""), BDF, &opts()).is_accepted());
    assert!(k.wrote("tsm/lock", "tsm1"));
    assert_eq!(k.attr(BDF, "tsm/lock"), "tsm1");
}

#[test]
fn refuses_when_no_allowed_tsm_is_registered() {
    let k = Kernel::new();
    let p = Policy::parse(&RULE.replace("devsec_tsm", "vendor_tsm"), "t").unwrap();
    assert!(refusal(&agent::accept(&k, &p, BDF, &opts())).contains("no allowed TSM"));
    assert!(k.writes().is_empty());
}

#[test]
fn locked_by_disallowed_tsm_is_refused_and_left_locked() {
    let k = Kernel::new();
    k.lock(BDF, "tsm1");
    let reason = refusal(&agent::accept(&k, &policy(""), BDF, &opts()));
    assert!(reason.contains("locked by tsm1 (other_tsm)"), "{reason}");
    assert!(k.writes().is_empty());
    assert_eq!(k.attr(BDF, "tsm/lock"), "tsm1");
}

#[test]
fn locked_by_allowed_tsm_is_accepted_without_relocking() {
    let k = Kernel::new();
    k.lock(BDF, "tsm0");
    assert!(agent::accept(&k, &policy(""), BDF, &opts()).is_accepted());
    assert!(!k.writes().iter().any(|(p, _)| p.ends_with("tsm/lock")));
}

#[test]
fn refusal_after_accepting_a_foreign_lock_unlocks() {
    let k = Kernel::new();
    k.lock(BDF, "tsm0");
    k.state.borrow_mut().driver = None;
    let verdict = agent::accept(&k, &policy("driver = \"devsec_pci\"\n"), BDF, &opts());
    assert!(refusal(&verdict).contains("did not bind"));
    assert!(k.wrote("tsm/unlock", "tsm0"));
    assert_pristine(&k);
}

#[test]
fn already_accepted_is_verified_not_accepted_again() {
    let k = Kernel::new();
    assert!(agent::accept(&k, &policy(""), BDF, &opts()).is_accepted());
    k.state.borrow_mut().writes.clear();
    let verdict = agent::accept(&k, &policy(""), BDF, &opts());
    assert!(verdict.is_accepted());
    assert!(k.writes().is_empty(), "{:?}", k.writes());
}

#[test]
fn driver_bound_before_lock_is_refused() {
    let k = Kernel::new();
    k.bind(BDF, "devsec_pci");
    let reason = refusal(&agent::accept(&k, &policy(""), BDF, &opts()));
    assert!(reason.contains("driver devsec_pci bound before acceptance"));
    assert!(k.writes().is_empty());
}

#[test]
fn stale_generation_is_retried_once() {
    let k = Kernel::new();
    k.state.borrow_mut().stale_accepts = 1;
    let verdict = agent::accept(&k, &policy(""), BDF, &opts());
    match verdict {
        Verdict::Accepted { generation, .. } => assert_eq!(generation, 2),
        other => panic!("{other:?}"),
    }
    assert!(k.wrote("tsm/accept", "generation=1"));
    assert!(k.wrote("tsm/accept", "generation=2"));
}

#[test]
fn stale_generation_twice_is_refused() {
    let k = Kernel::new();
    k.state.borrow_mut().stale_accepts = 2;
    let reason = refusal(&agent::accept(&k, &policy(""), BDF, &opts()));
    assert!(reason.contains("ESTALE"), "{reason}");
    assert_pristine(&k);
}

#[test]
fn changed_report_is_refused() {
    let k = Kernel::new();
    k.state.borrow_mut().report_changed = true;
    let reason = refusal(&agent::accept(&k, &policy(""), BDF, &opts()));
    assert!(reason.contains("EBADMSG"), "{reason}");
    assert_pristine(&k);
}

#[test]
fn hold_and_release() {
    let k = Kernel::new();
    agent::hold(&k, BDF).unwrap();
    assert_eq!(k.attr(BDF, "driver_override"), HOLD);
    assert_eq!(agent::release(&k, BDF, None), Ok(true));
    assert_eq!(k.attr(BDF, "driver_override"), "(null)");
    // Someone else's override is not ours to clear.
    k.put(
        &format!("bus/pci/devices/{BDF}/driver_override"),
        "vfio-pci\n",
    );
    assert_eq!(agent::release(&k, BDF, None), Ok(false));
    assert_eq!(k.attr(BDF, "driver_override"), "vfio-pci");
}

#[test]
fn release_binds_the_policy_driver() {
    let k = Kernel::new();
    agent::hold(&k, BDF).unwrap();
    assert_eq!(agent::release(&k, BDF, Some("devsec_pci")), Ok(true));
    assert_eq!(k.attr(BDF, "driver_override"), "devsec_pci");
    // Without a hold, the policy's driver is set where there is no override...
    k.put(
        &format!("bus/pci/devices/{BDF}/driver_override"),
        "(null)\n",
    );
    assert_eq!(agent::release(&k, BDF, Some("devsec_pci")), Ok(true));
    assert_eq!(k.attr(BDF, "driver_override"), "devsec_pci");
    // ... and nothing is done without one.
    k.put(
        &format!("bus/pci/devices/{BDF}/driver_override"),
        "(null)\n",
    );
    assert_eq!(agent::release(&k, BDF, None), Ok(false));
    assert_eq!(k.attr(BDF, "driver_override"), "(null)");
}

fn event(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

const ADD: &[(&str, &str)] = &[
    ("ACTION", "add"),
    ("SUBSYSTEM", "pci"),
    ("DEVPATH", "/devices/pci10000:01/10000:01:00.0"),
    ("PCI_SLOT_NAME", "10000:01:00.0"),
];

#[test]
fn hotplug_holds_accepts_then_releases() {
    let k = Kernel::new();
    let load = || Ok(policy("driver = \"devsec_pci\"\n"));
    let outcome = hotplug::handle_event(&k, &event(ADD), &load, &opts());
    match outcome {
        Outcome::Verdict(bdf, v) => {
            assert_eq!(bdf, BDF);
            assert!(v.is_accepted(), "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    let order: Vec<String> = k
        .writes()
        .into_iter()
        .map(|(p, d)| format!("{}={}", p.rsplit('/').next().unwrap(), d.trim()))
        .collect();
    assert_eq!(
        order,
        [
            format!("driver_override={HOLD}"),
            "lock=tsm0".to_string(),
            "accept=generation=1".to_string(),
            "driver_override=devsec_pci".to_string(),
            format!("drivers_probe={BDF}"),
        ]
    );
    assert_eq!(k.bound(BDF).as_deref(), Some("devsec_pci"));
}

#[test]
fn hotplug_refusal_keeps_the_hold() {
    let k = Kernel::new();
    let load = || Policy::parse("[[rule]]\nname = \"vf\"\ndevice = 0x0d5d\n", "t");
    match hotplug::handle_event(&k, &event(ADD), &load, &opts()) {
        Outcome::Verdict(_, v) => assert!(!v.is_accepted()),
        other => panic!("{other:?}"),
    }
    assert_eq!(k.attr(BDF, "driver_override"), HOLD);
    assert_pristine(&k);
}

#[test]
fn hotplug_policy_error_keeps_the_hold() {
    let k = Kernel::new();
    let load = || Err("broken".to_string());
    let outcome = hotplug::handle_event(&k, &event(ADD), &load, &opts());
    assert_eq!(
        outcome,
        Outcome::PolicyError(BDF.to_string(), "broken".to_string())
    );
    assert_eq!(k.attr(BDF, "driver_override"), HOLD);
}

#[test]
fn hotplug_ignores_other_events() {
    let k = Kernel::new();
    let load = || -> Result<Policy, String> { panic!("policy loaded for an ignored event") };
    for vars in [
        &[
            ("ACTION", "remove"),
            ("SUBSYSTEM", "pci"),
            ("PCI_SLOT_NAME", BDF),
        ][..],
        &[
            ("ACTION", "add"),
            ("SUBSYSTEM", "usb"),
            ("DEVPATH", "/devices/usb1"),
        ][..],
        &[
            ("ACTION", "add"),
            ("SUBSYSTEM", "pci"),
            ("PCI_SLOT_NAME", "0000:00:02.0"),
        ][..],
        &[("ACTION", "add"), ("SUBSYSTEM", "pci")][..],
    ] {
        let vars: &'static [(&str, &str)] = Box::leak(vars.to_vec().into_boxed_slice());
        assert_eq!(
            hotplug::handle_event(&k, &event(vars), &load, &opts()),
            Outcome::Ignored
        );
    }
    assert!(k.writes().is_empty());
}

#[test]
fn hotplug_takes_the_bdf_from_devpath() {
    let k = Kernel::new();
    const VARS: &[(&str, &str)] = &[
        ("ACTION", "add"),
        ("SUBSYSTEM", "pci"),
        ("DEVPATH", "/devices/pci10000:01/10000:01:00.0"),
    ];
    let load = || Ok(policy(""));
    match hotplug::handle_event(&k, &event(VARS), &load, &opts()) {
        Outcome::Verdict(bdf, v) => assert!(bdf == BDF && v.is_accepted()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn apply_handles_every_tee_function() {
    let k = Kernel::new();
    k.add_function("10000:01:01.0", 0x0d5d);
    k.mkdir("bus/pci/devices/0000:00:00.0");
    let verdicts = hotplug::apply(&k, &policy(""), &opts()).unwrap();
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[0].0, BDF);
    assert!(verdicts[0].1.is_accepted());
    assert_eq!(verdicts[1].0, "10000:01:01.0");
    assert!(!verdicts[1].1.is_accepted());
    assert_eq!(k.attr("10000:01:01.0", "driver_override"), HOLD);
}

#[test]
fn watcher_handles_each_function_once_and_again_after_removal() {
    let k = Kernel::new();
    let load = || Ok(policy("driver = \"devsec_pci\"\n"));
    let mut w = hotplug::Watcher::new();
    let first = w.poll(&k, &load, &opts()).unwrap();
    assert_eq!(first.len(), 1);
    assert!(matches!(&first[0], hotplug::Outcome::Verdict(b, v) if b == BDF && v.is_accepted()));
    assert_eq!(k.bound(BDF).as_deref(), Some("devsec_pci"));
    // Nothing new: nothing done, nothing written.
    let writes = k.writes().len();
    assert!(w.poll(&k, &load, &opts()).unwrap().is_empty());
    assert_eq!(k.writes().len(), writes);
    // A function that appears is held and handled; one the policy refuses keeps the hold.
    k.add_function("10000:01:01.0", 0x0d5d);
    let added = w.poll(&k, &load, &opts()).unwrap();
    assert_eq!(added.len(), 1);
    assert!(
        matches!(&added[0], hotplug::Outcome::Verdict(b, v) if b == "10000:01:01.0" && !v.is_accepted())
    );
    assert_eq!(k.attr("10000:01:01.0", "driver_override"), HOLD);
    // Gone and back: handled again.
    k.remove_function("10000:01:01.0");
    assert!(w.poll(&k, &load, &opts()).unwrap().is_empty());
    k.add_function("10000:01:01.0", 0x0d5d);
    assert_eq!(w.poll(&k, &load, &opts()).unwrap().len(), 1);
}

#[test]
fn list_and_show() {
    let k = Kernel::new();
    let text = agent::format_list(&agent::list(&k).unwrap());
    assert_eq!(
        text,
        "BDF            ID         CLASS     LOCK  ACCEPTED  DRIVER\n\
         10000:01:00.0  1b36:0d5c  0xff0000  -     0         -\n"
    );
    let err = agent::show(&k, BDF, None).unwrap_err();
    assert!(err.contains("not locked"), "{err}");
    k.lock(BDF, "tsm0");
    let text = agent::show(&k, BDF, None).unwrap();
    assert!(
        text.contains("locked_by:              tsm0 (devsec_tsm)"),
        "{text}"
    );
    assert!(text.contains(&format!("id 0 address 0x{:x} size 0x4000", bar0_start())));
    assert!(agent::format_list(&agent::list(&k).unwrap()).contains("tsm0  0         -"));
}

/// An SPDM chain of two fake DER "certificates"; its root hash is SHA-384 of the first.
fn chain(root: &[u8], leaf: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha384};
    let len = 52 + root.len() + leaf.len();
    let mut c = (len as u16).to_le_bytes().to_vec();
    c.extend_from_slice(&[0, 0]);
    c.extend_from_slice(&Sha384::digest(root));
    c.extend_from_slice(root);
    c.extend_from_slice(leaf);
    c
}

#[test]
fn chain_root_fingerprint_is_checked() {
    let root = [0x30, 0x03, 1, 2, 3];
    let leaf = [0x30, 0x81, 0x02, 9, 9];
    let good = chain(&root, &leaf);
    let fp = chain_root_sha384(&good).unwrap();
    let mut bad_hash = good.clone();
    bad_hash[10] ^= 1;
    assert!(chain_root_sha384(&bad_hash).is_err());
    assert!(chain_root_sha384(&good[..good.len() - 1]).is_err());
    let mut not_der = good.clone();
    not_der[52] = 0x31;
    assert!(chain_root_sha384(&not_der).is_err());
    assert!(chain_root_sha384(&chain(&[0x30, 0x09, 1], &[])).is_err());

    let bars = pci::parse_resource(&resource()).unwrap();
    let hex = devsec_agent::policy::to_hex(&fp);
    let r = rule(&format!(
        "root_cert_sha384 = [\"{}\", \"{hex}\"]\n",
        "00".repeat(48)
    ));
    let mut ev = evidence();
    refused_with(&r, &ev, &resource(), "no SPDM certificate chain");
    ev.root_sha384 = Some(fp);
    assert_eq!(verify(&r, &ev, &bars), Ok(()));
    let other = rule(&format!("root_cert_sha384 = [\"{}\"]\n", "00".repeat(48)));
    refused_with(&other, &ev, &resource(), "a root the rule does not name");
    for bad in ["root_cert_sha384 = [\"00\"]", "root_cert_sha384 = [\"zz\"]"] {
        assert!(
            Policy::parse(&format!("{RULE}{bad}\n"), "test").is_err(),
            "{bad}"
        );
    }
}

/// The SPDM evidence as the agent reads it: absent (an older kernel) or ENODATA (a device
/// the TSM did not authenticate) is no SPDM evidence; any other error fails the read; a
/// chain and measurements are decoded.
#[test]
fn spdm_evidence_is_read_or_its_absence_told_from_errors() {
    let k = Kernel::new();
    k.lock(BDF, "tsm0");
    let ev = Evidence::read(&k, BDF).unwrap();
    assert!(ev.measurements.is_none() && ev.root_sha384.is_none());

    let dev = format!("bus/pci/devices/{BDF}");
    let good = chain(&[0x30, 0x03, 1, 2, 3], &[0x30, 0x00]);
    k.put_bytes(&format!("{dev}/tsm/cert_chain"), &good);
    k.put_bytes(
        &format!("{dev}/tsm/measurements"),
        &measurements_msg(0xaa, 0xbb),
    );
    let ev = Evidence::read(&k, BDF).unwrap();
    assert_eq!(ev.root_sha384, Some(chain_root_sha384(&good).unwrap()));
    assert_eq!(ev.measurements.map(|m| m.len()), Some(2));

    k.state.borrow_mut().spdm_errno = Some(errno::ENODATA);
    let ev = Evidence::read(&k, BDF).unwrap();
    assert!(ev.measurements.is_none() && ev.root_sha384.is_none());

    k.state.borrow_mut().spdm_errno = Some(errno::EACCES);
    let e = Evidence::read(&k, BDF).unwrap_err();
    assert!(e.contains("tsm/measurements"), "{e}");

    // A chain that is there but broken is an error too, not "no SPDM evidence".
    k.state.borrow_mut().spdm_errno = None;
    k.put_bytes(&format!("{dev}/tsm/cert_chain"), &good[..good.len() - 1]);
    let e = Evidence::read(&k, BDF).unwrap_err();
    assert!(e.contains("tsm/cert_chain"), "{e}");
}
