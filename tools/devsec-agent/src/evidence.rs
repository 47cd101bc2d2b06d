// SPDX-License-Identifier: GPL-2.0

//! The evidence of a locked function (`tsm/generation`, `tsm/tdisp_version`,
//! `tsm/tdisp_caps`, `tsm/interface_report`) and its verification against a rule.

use std::fmt::Write as _;

use crate::pci::dev_dir;
use crate::policy::{to_hex, Rule};
use crate::sysfs::{errno, errno_name, Sysfs};
use crate::tdisp::{interface_info_names, Bar, Caps, Report};

/// Evidence read from `tsm/` while the function is locked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Evidence generation: system-wide, new for every lock.
    pub generation: u64,
    /// TDISP version, `major.minor`.
    pub tdisp_version: String,
    /// Decoded TDISP capabilities.
    pub caps: Caps,
    /// Decoded interface report.
    pub report: Report,
    /// The measurement blocks of the signed SPDM MEASUREMENTS (`tsm/measurements`), if
    /// the TSM authenticated the device; the TSM verified the signature.
    pub measurements: Option<Vec<MeasurementBlock>>,
    /// SHA-384 of the root certificate of the SPDM chain (`tsm/cert_chain`) the TSM
    /// validated, if it authenticated the device.
    pub root_sha384: Option<[u8; 48]>,
}

/// Returns the length of the DER element (tag, length, contents) `der` starts with; only
/// definite lengths of up to three length bytes, as certificates have.
fn der_len(der: &[u8]) -> Option<usize> {
    let (head, len) = match *der.get(1)? {
        n @ 0..=0x7f => (2, usize::from(n)),
        0x81 => (3, usize::from(*der.get(2)?)),
        0x82 => (
            4,
            usize::from(u16::from_be_bytes([*der.get(2)?, *der.get(3)?])),
        ),
        0x83 => (
            5,
            usize::from(*der.get(2)?) << 16
                | usize::from(*der.get(3)?) << 8
                | usize::from(*der.get(4)?),
        ),
        _ => return None,
    };
    (der.len() >= head + len).then_some(head + len)
}

/// Returns SHA-384 of the root certificate of an SPDM certificate chain (`tsm/cert_chain`):
/// u16 Length (the whole chain), u16 reserved, the root hash, then the DER certificates,
/// root first. The chain's own root hash must be that digest.
pub fn chain_root_sha384(chain: &[u8]) -> Result<[u8; 48], String> {
    use sha2::{Digest, Sha384};
    let bad = |what: &str| format!("tsm/cert_chain: {what}");
    if chain.len() < 52 || usize::from(u16::from_le_bytes([chain[0], chain[1]])) != chain.len() {
        return Err(bad("length field does not match"));
    }
    let certs = &chain[52..];
    if certs.first() != Some(&0x30) {
        return Err(bad("no DER certificate after the header"));
    }
    let root = &certs[..der_len(certs).ok_or_else(|| bad("malformed root certificate"))?];
    let digest: [u8; 48] = Sha384::digest(root).into();
    if chain[4..52] != digest {
        return Err(bad("root hash is not the root certificate's"));
    }
    Ok(digest)
}

/// One DMTF measurement block of an SPDM MEASUREMENTS response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasurementBlock {
    /// Block index.
    pub index: u8,
    /// DMTFSpecMeasurementValueType.
    pub value_type: u8,
    /// The value (a digest, or a raw bit stream).
    pub value: Vec<u8>,
}

/// Decodes the measurement blocks of an SPDM 1.2 MEASUREMENTS response (`tsm/measurements`):
/// header (version 0x12, code 0x60), NumberOfBlocks, 24-bit MeasurementRecordLength, then
/// DMTF blocks (index, specification 0x01, size, value type, value size, value) that fill
/// the record exactly.
pub fn decode_measurements(msg: &[u8]) -> Result<Vec<MeasurementBlock>, String> {
    let bad = |what: &str| format!("tsm/measurements: {what}");
    if msg.len() < 8 || msg[0] != 0x12 || msg[1] != 0x60 {
        return Err(bad("not an SPDM 1.2 MEASUREMENTS response"));
    }
    let count = usize::from(msg[4]);
    let len = usize::from(msg[5]) | usize::from(msg[6]) << 8 | usize::from(msg[7]) << 16;
    let mut rest = msg
        .get(8..8 + len)
        .ok_or_else(|| bad("record longer than the response"))?;
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 7 || rest[1] != 0x01 {
            return Err(bad("malformed measurement block"));
        }
        let size = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let value_size = usize::from(u16::from_le_bytes([rest[5], rest[6]]));
        if size != value_size + 3 {
            return Err(bad("inconsistent measurement block sizes"));
        }
        let value = rest
            .get(7..7 + value_size)
            .ok_or_else(|| bad("truncated block"))?;
        blocks.push(MeasurementBlock {
            index: rest[0],
            value_type: rest[4],
            value: value.to_vec(),
        });
        rest = &rest[7 + value_size..];
    }
    if blocks.len() != count {
        return Err(bad("NumberOfBlocks does not match the record"));
    }
    Ok(blocks)
}

fn read_error(path: &str, err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(errno::ENXIO) => "not locked (evidence is readable only while locked)".to_string(),
        Some(errno::EACCES) | Some(errno::EPERM) => {
            format!("cannot read {path}: permission denied (evidence is readable by root only)")
        }
        _ => format!("cannot read {path}: {}", errno_name(err)),
    }
}

impl Evidence {
    /// Reads and decodes the evidence of `bdf`. The generation is read first: if the
    /// evidence changes while it is being read, the generation-bound accept fails.
    pub fn read(sys: &dyn Sysfs, bdf: &str) -> Result<Self, String> {
        let dir = format!("{}/tsm", dev_dir(bdf));
        let text = |attr: &str| {
            let path = format!("{dir}/{attr}");
            sys.read_str(&path).map_err(|e| read_error(&path, &e))
        };
        let binary = |attr: &str| {
            let path = format!("{dir}/{attr}");
            sys.read(&path).map_err(|e| read_error(&path, &e))
        };
        let generation_text = text("generation")?;
        let generation = generation_text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("tsm/generation: \"{generation_text}\" is not a number"))?;
        let tdisp_version = text("tdisp_version")?.trim().to_string();
        let caps = Caps::decode(&binary("tdisp_caps")?)?;
        let report = Report::decode(&binary("interface_report")?)?;
        // A kernel or TSM without SPDM authentication has none (ENOENT, ENODATA).
        // Absent (ENOENT, an older kernel) or empty (ENODATA, a TSM that did not
        // authenticate the device): no SPDM evidence. Any other error is one.
        let optional = |attr: &str| {
            let path = format!("{dir}/{attr}");
            match sys.read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if matches!(e.raw_os_error(), Some(errno::ENOENT | errno::ENODATA)) => {
                    Ok(None)
                }
                Err(e) => Err(read_error(&path, &e)),
            }
        };
        let measurements = optional("measurements")?
            .map(|msg| decode_measurements(&msg))
            .transpose()?;
        let root_sha384 = optional("cert_chain")?
            .map(|chain| chain_root_sha384(&chain))
            .transpose()?;
        Ok(Self {
            generation,
            tdisp_version,
            caps,
            report,
            measurements,
            root_sha384,
        })
    }

    /// Formats the evidence for `show`; `offset` is the MMIO reporting offset removed from
    /// the reported addresses.
    pub fn describe(&self, offset: u64) -> String {
        let caps = &self.caps;
        let report = &self.report;
        let mut lines: Vec<(&str, String)> = vec![
            ("generation", self.generation.to_string()),
            ("tdisp_version", self.tdisp_version.clone()),
            ("capabilities", String::new()),
            ("  dsm_caps", format!("0x{:08x}", caps.dsm_caps)),
            ("  requests", caps.supported_requests().join(" ")),
            (
                "  lock_flags",
                format!(
                    "0x{:04x} {}",
                    caps.lock_flags_supported,
                    caps.lock_flag_names()
                ),
            ),
            ("  dev_addr_width", caps.dev_addr_width.to_string()),
            ("  num_req_this", caps.num_req_this.to_string()),
            ("  num_req_all", caps.num_req_all.to_string()),
            ("interface report", String::new()),
            (
                "  interface_info",
                format!(
                    "0x{:04x} {}",
                    report.interface_info,
                    interface_info_names(report.interface_info)
                ),
            ),
            (
                "  msi_x_message_control",
                format!("0x{:04x}", report.msi_x_message_control),
            ),
            ("  lnr_control", format!("0x{:04x}", report.lnr_control)),
            ("  tph_control", format!("0x{:08x}", report.tph_control)),
            ("  mmio_ranges", report.ranges.len().to_string()),
        ];
        for range in &report.ranges {
            let address = match range.address(offset) {
                Some(a) => format!("0x{a:x}"),
                None => format!("below the offset (first_page 0x{:x})", range.first_page),
            };
            lines.push((
                "    range",
                format!(
                    "id {} address {} size 0x{:x} ({} pages) attributes 0x{:04x} {}{}",
                    range.range_id,
                    address,
                    range.size(),
                    range.number_of_pages,
                    range.attributes,
                    range.attribute_names(),
                    if range.is_private() { " (private)" } else { "" }
                ),
            ));
        }
        let hex = to_hex(&report.device_specific);
        let ds = match report.device_specific.len() {
            0 => "0 bytes".to_string(),
            len => format!("{len} bytes {hex}"),
        };
        lines.push(("  device_specific", ds));
        let blocks = self.measurements.as_deref().unwrap_or_default();
        let values: Vec<String> = blocks
            .iter()
            .map(|b| {
                format!(
                    "{} type 0x{:02x} {}",
                    b.index,
                    b.value_type,
                    to_hex(&b.value)
                )
            })
            .collect();
        lines.push((
            "spdm root sha384",
            self.root_sha384.map_or("none".to_string(), |d| to_hex(&d)),
        ));
        lines.push((
            "spdm measurements",
            match &self.measurements {
                None => "none (device not authenticated)".to_string(),
                Some(_) => values.join("; "),
            },
        ));
        format_fields(&lines)
    }
}

/// Formats `key: value` lines with the values aligned; keys without a value are headings.
pub fn format_fields(lines: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (key, value) in lines {
        if value.is_empty() {
            let _ = writeln!(out, "{key}:");
        } else {
            let _ = writeln!(out, "{:<24}{value}", format!("{key}:"));
        }
    }
    out
}

/// Verifies `evidence` against `rule` and the function's memory `bars`; the error is the
/// refusal reason.
pub fn verify(rule: &Rule, evidence: &Evidence, bars: &[Bar]) -> Result<(), String> {
    if !rule.root_cert_sha384.is_empty() {
        let Some(root) = &evidence.root_sha384 else {
            return Err("no SPDM certificate chain (device not authenticated)".to_string());
        };
        if !rule.root_cert_sha384.iter().any(|want| want == root) {
            return Err("certificate chain ends in a root the rule does not name".to_string());
        }
    }
    if !rule.measurements.is_empty() {
        let Some(blocks) = &evidence.measurements else {
            return Err("no SPDM measurements (device not authenticated)".to_string());
        };
        for (index, want) in &rule.measurements {
            match blocks.iter().find(|b| b.index == *index) {
                None => return Err(format!("measurement block {index} missing")),
                Some(b) if b.value != *want => {
                    return Err(format!("measurement block {index} differs from the rule"));
                }
                Some(_) => {}
            }
        }
    }
    if evidence.tdisp_version != rule.tdisp_version {
        return Err(format!(
            "TDISP version {} but the rule requires {}",
            evidence.tdisp_version, rule.tdisp_version
        ));
    }
    let report = &evidence.report;
    let missing = rule.interface_info_required & !report.interface_info;
    if missing != 0 {
        return Err(format!(
            "interface_info lacks required {}",
            interface_info_names(missing)
        ));
    }
    let forbidden = rule.interface_info_forbidden & report.interface_info;
    if forbidden != 0 {
        return Err(format!(
            "interface_info has forbidden {}",
            interface_info_names(forbidden)
        ));
    }
    let placed = report
        .check_against_bars(bars, rule.mmio_reporting_offset)
        .map_err(|e| format!("layout: {e}"))?;
    if let Some(expected) = &rule.bars {
        let reported: std::collections::BTreeSet<u16> = placed.iter().map(|r| r.bar).collect();
        if &reported != expected {
            let list = |set: &std::collections::BTreeSet<u16>| {
                set.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
            };
            return Err(format!(
                "layout: reported BARs [{}] but the rule requires [{}]",
                list(&reported),
                list(expected)
            ));
        }
    }
    if let Some(expected) = rule.private_ranges {
        let private = placed.iter().filter(|r| r.private).count();
        if private != expected {
            return Err(format!(
                "layout: {private} private range(s) but the rule requires {expected}"
            ));
        }
    }
    // Every BAR of the function holds a range (the check above): the size is the BAR's.
    for (bar, size) in &rule.sizes {
        let Some(found) = bars.iter().find(|b| b.index == *bar) else {
            return Err(format!(
                "layout: BAR {bar} is not reported but the rule requires it with size {size}"
            ));
        };
        if found.len != *size {
            return Err(format!(
                "layout: BAR {bar} size {} but the rule requires {size}",
                found.len
            ));
        }
    }
    Ok(())
}
