// SPDX-License-Identifier: GPL-2.0

//! The acceptance policy: a TOML file of rules, parsed strictly and validated once.
//!
//! See `policy.example.toml` and the README for the format. The file is parsed into the
//! `*File` types (exactly what TOML says, unknown keys rejected), then validated into
//! [`Policy`], whose fields are ready to use: ranges checked, names resolved, defaults
//! applied. First matching rule wins; no matching rule means refuse.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::pci::Function;
use crate::tdisp;

/// The MMIO reporting offset of the kernel's sample devsec TSM (`MMIO_REPORTING_OFFSET` in
/// `samples/devsec/devsec_tsm.rs`): the TSM adds it to every address in the interface
/// report, the agent removes it before comparing with the BARs.
pub const DEFAULT_MMIO_REPORTING_OFFSET: u64 = 1 << 40;

/// The only TDISP version the shared codec speaks.
pub const DEFAULT_TDISP_VERSION: &str = "1.0";

/// A validated policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// What a rule does with the functions it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Verify the evidence and accept if it satisfies the rule.
    Accept,
    /// Refuse without looking at the evidence.
    Refuse,
}

/// A validated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Name, printed in verdicts.
    pub name: String,
    /// What to do with matching functions.
    pub action: Action,
    /// Vendor IDs, any of which matches; empty = any.
    pub vendor: Vec<u16>,
    /// Device IDs, any of which matches; empty = any.
    pub device: Vec<u16>,
    /// Class code and mask: matches if `class & mask == value & mask`.
    pub class: Option<(u32, u32)>,
    /// BDF glob (`*`, `?`).
    pub bdf: Option<String>,
    /// Names of the TSMs (their parent device) allowed to lock; empty = any devsec TSM.
    pub tsm: Vec<String>,
    /// Required TDISP version, `major.minor`.
    pub tdisp_version: String,
    /// `interface_info` bits that must be set.
    pub interface_info_required: u16,
    /// `interface_info` bits that must be clear.
    pub interface_info_forbidden: u16,
    /// Exactly these BARs must be reported; `None` = not checked.
    pub bars: Option<BTreeSet<u16>>,
    /// Exactly this many ranges must be TEE (private) memory; `None` = not checked.
    pub private_ranges: Option<usize>,
    /// Required size in bytes of the range of each listed BAR.
    pub sizes: BTreeMap<u16, u64>,
    /// Driver that must bind after acceptance.
    pub driver: Option<String>,
    /// The TSM's MMIO reporting offset.
    pub mmio_reporting_offset: u64,
    /// Expected SPDM measurement values by block index (1..=254): each listed block must
    /// be in the signed measurements with exactly this value; unlisted blocks are ignored.
    pub measurements: BTreeMap<u8, Vec<u8>>,
    /// Accepted SHA-384 fingerprints of the root certificate of the device's SPDM chain;
    /// empty = not checked.
    pub root_cert_sha384: Vec<[u8; 48]>,
}

impl Rule {
    /// Returns whether the rule's match fields all match `function`.
    pub fn matches(&self, function: &Function) -> bool {
        (self.vendor.is_empty() || self.vendor.contains(&function.vendor))
            && (self.device.is_empty() || self.device.contains(&function.device))
            && self
                .class
                .is_none_or(|(value, mask)| function.class & mask == value & mask)
            && self
                .bdf
                .as_deref()
                .is_none_or(|g| glob_match(g, &function.bdf))
    }

    /// Returns whether TSM `name` may lock functions of this rule.
    pub fn allows_tsm(&self, name: &str) -> bool {
        self.tsm.is_empty() || self.tsm.iter().any(|t| t == name)
    }
}

impl Policy {
    /// Parses and validates policy text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| format!("{origin}: {}", e.to_string().trim_end()))?;
        file.validate().map_err(|e| format!("{origin}: {e}"))
    }

    /// Reads, parses and validates the policy file at `path`.
    pub fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        Self::parse(&text, path)
    }

    /// Returns the first rule matching `function`.
    pub fn find(&self, function: &Function) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(function))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex4 = |ids: &[u16]| {
            ids.iter()
                .map(|id| format!("0x{id:04x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let action = match self.action {
            Action::Accept => "accept",
            Action::Refuse => "refuse",
        };
        write!(f, "rule \"{}\": {action}", self.name)?;
        write!(f, "\n  match:")?;
        let mut any = false;
        if !self.vendor.is_empty() {
            write!(f, " vendor={}", hex4(&self.vendor))?;
            any = true;
        }
        if !self.device.is_empty() {
            write!(f, " device={}", hex4(&self.device))?;
            any = true;
        }
        if let Some((value, mask)) = self.class {
            write!(f, " class=0x{value:06x}/0x{mask:06x}")?;
            any = true;
        }
        if let Some(bdf) = &self.bdf {
            write!(f, " bdf={bdf}")?;
            any = true;
        }
        if !any {
            write!(f, " any TEE-capable function")?;
        }
        if self.action == Action::Refuse {
            return Ok(());
        }
        let tsm = if self.tsm.is_empty() {
            "any devsec TSM".to_string()
        } else {
            self.tsm.join(",")
        };
        write!(f, "\n  tsm: {tsm}")?;
        write!(f, "\n  tdisp_version: {}", self.tdisp_version)?;
        write!(
            f,
            "\n  interface_info: required {} / forbidden {}",
            tdisp::interface_info_names(self.interface_info_required),
            tdisp::interface_info_names(self.interface_info_forbidden)
        )?;
        write!(f, "\n  layout:")?;
        match &self.bars {
            Some(bars) => {
                let list: Vec<String> = bars.iter().map(u16::to_string).collect();
                write!(f, " bars=[{}]", list.join(","))?;
            }
            None => write!(f, " bars=any")?,
        }
        match self.private_ranges {
            Some(n) => write!(f, " private_ranges={n}")?,
            None => write!(f, " private_ranges=any")?,
        }
        for (bar, size) in &self.sizes {
            write!(f, " size[{bar}]={size}")?;
        }
        write!(
            f,
            " (all memory BARs checked against resource, reporting offset 0x{:x})",
            self.mmio_reporting_offset
        )?;
        match &self.driver {
            Some(driver) => write!(f, "\n  driver: {driver} required"),
            None => write!(f, "\n  driver: any or none"),
        }
    }
}

/// Matches `text` against a glob of literal characters, `*` (any run) and `?` (any one).
pub fn glob_match(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: the last `*` seen.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

// ---------------------------------------------------------------------------------------
// The file format.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    default: Option<String>,
    mmio_reporting_offset: Option<u64>,
    #[serde(default)]
    rule: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    action: Option<String>,
    vendor: Option<Numbers>,
    device: Option<Numbers>,
    class: Option<u64>,
    class_mask: Option<u64>,
    bdf: Option<String>,
    tsm: Option<Vec<String>>,
    tdisp_version: Option<String>,
    interface_info_required: Option<Vec<Bit>>,
    interface_info_forbidden: Option<Vec<Bit>>,
    bars: Option<Vec<u64>>,
    private_ranges: Option<u64>,
    sizes: Option<BTreeMap<String, u64>>,
    driver: Option<String>,
    mmio_reporting_offset: Option<u64>,
    measurements: Option<BTreeMap<String, String>>,
    root_cert_sha384: Option<Vec<String>>,
}

/// Encodes `bytes` as lowercase hex, as [`parse_hex`] takes it.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a hex string (even length, no prefix) into bytes.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty()
        || !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// One integer or a list of integers (`vendor = 0x1b36` or `vendor = [0x1b36, 0x1af4]`).
#[derive(Debug)]
struct Numbers(Vec<u64>);

impl<'de> Deserialize<'de> for Numbers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Numbers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or a list of them")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Numbers, E> {
                u64::try_from(v)
                    .map(|v| Numbers(vec![v]))
                    .map_err(|_| E::custom(format!("negative number {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Numbers, E> {
                Ok(Numbers(vec![v]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Numbers, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    out.push(v);
                }
                Ok(Numbers(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// An `interface_info` bit: its name or its bit number.
#[derive(Debug)]
enum Bit {
    Name(String),
    Number(u64),
}

impl<'de> Deserialize<'de> for Bit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bit name (\"NO_UPDATE_AFTER_LOCK\") or a bit number (0..=15)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bit, E> {
                u64::try_from(v)
                    .map(Bit::Number)
                    .map_err(|_| E::custom(format!("negative bit number {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bit, E> {
                Ok(Bit::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bit, E> {
                Ok(Bit::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn id16(what: &str, values: Option<Numbers>) -> Result<Vec<u16>, String> {
    let Some(Numbers(values)) = values else {
        return Ok(Vec::new());
    };
    if values.is_empty() {
        // An empty list would silently mean "any"; make the author say so by omitting it.
        return Err(format!("{what} list is empty"));
    }
    values
        .into_iter()
        .map(|v| u16::try_from(v).map_err(|_| format!("{what} 0x{v:x} is not a 16-bit ID")))
        .collect()
}

fn bits(what: &str, list: Option<Vec<Bit>>) -> Result<u16, String> {
    let mut mask = 0u16;
    for bit in list.unwrap_or_default() {
        let number = match bit {
            Bit::Name(name) => tdisp::interface_info_bit(&name).ok_or_else(|| {
                let known: Vec<&str> = tdisp::INTERFACE_INFO_BITS.iter().map(|(_, n)| *n).collect();
                format!(
                    "{what}: unknown bit name \"{name}\" (known: {}; or a bit number 0..=15)",
                    known.join(", ")
                )
            })?,
            Bit::Number(n) => u8::try_from(n)
                .ok()
                .filter(|n| *n < 16)
                .ok_or_else(|| format!("{what}: bit number {n} is not in 0..=15"))?,
        };
        mask |= 1 << number;
    }
    Ok(mask)
}

fn bar_index(what: &str, v: u64) -> Result<u16, String> {
    u16::try_from(v)
        .ok()
        .filter(|v| *v <= 5)
        .ok_or_else(|| format!("{what}: BAR {v} is not in 0..=5"))
}

fn offset(v: u64) -> Result<u64, String> {
    if !v.is_multiple_of(tdisp::TDISP_PAGE_SIZE) {
        return Err(format!(
            "mmio_reporting_offset 0x{v:x} is not a multiple of 4096"
        ));
    }
    Ok(v)
}

impl PolicyFile {
    fn validate(self) -> Result<Policy, String> {
        match self.default.as_deref() {
            None | Some("refuse") => {}
            Some(other) => {
                return Err(format!(
                    "default = \"{other}\": the only supported default is \"refuse\""
                ))
            }
        }
        let global_offset = offset(
            self.mmio_reporting_offset
                .unwrap_or(DEFAULT_MMIO_REPORTING_OFFSET),
        )?;
        if self.rule.is_empty() {
            return Err("no rules (add at least one [[rule]])".to_string());
        }
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for (index, file) in self.rule.into_iter().enumerate() {
            let label = if file.name.is_empty() {
                format!("rule #{}", index + 1)
            } else {
                format!("rule \"{}\"", file.name)
            };
            let rule = file
                .validate(global_offset)
                .map_err(|e| format!("{label}: {e}"))?;
            if !names.insert(rule.name.clone()) {
                return Err(format!("{label}: duplicate rule name"));
            }
            rules.push(rule);
        }
        Ok(Policy { rules })
    }
}

impl RuleFile {
    fn validate(self, global_offset: u64) -> Result<Rule, String> {
        if self.name.is_empty() || self.name.contains(['"', '\n']) {
            return Err("name must be non-empty and contain no quotes or newlines".to_string());
        }
        let action = match self.action.as_deref() {
            None | Some("accept") => Action::Accept,
            Some("refuse") => Action::Refuse,
            Some(other) => {
                return Err(format!(
                    "action = \"{other}\": expected \"accept\" or \"refuse\""
                ))
            }
        };
        let class = match (self.class, self.class_mask) {
            (None, None) => None,
            (None, Some(_)) => return Err("class_mask without class".to_string()),
            (Some(value), mask) => {
                let mask = mask.unwrap_or(0xff_ffff);
                if value > 0xff_ffff || mask > 0xff_ffff {
                    return Err("class and class_mask are 24-bit values".to_string());
                }
                // Both are at most 24 bits, so the conversions cannot fail.
                Some((value as u32, mask as u32))
            }
        };
        if let Some(bdf) = &self.bdf {
            if bdf.is_empty() {
                return Err("bdf glob is empty".to_string());
            }
        }
        if self.tsm.as_ref().is_some_and(Vec::is_empty) {
            return Err("tsm list is empty (omit it to allow any devsec TSM)".to_string());
        }
        let tsm = self.tsm.unwrap_or_default();
        if tsm.iter().any(|t| t.is_empty() || t.contains('/')) {
            return Err("tsm names must be non-empty device names".to_string());
        }
        let tdisp_version = self
            .tdisp_version
            .unwrap_or_else(|| DEFAULT_TDISP_VERSION.to_string());
        let valid_version = tdisp_version.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        });
        if !valid_version {
            return Err(format!(
                "tdisp_version \"{tdisp_version}\" is not major.minor"
            ));
        }
        let required = bits("interface_info_required", self.interface_info_required)?;
        let forbidden = bits("interface_info_forbidden", self.interface_info_forbidden)?;
        if required & forbidden != 0 {
            return Err(format!(
                "interface_info bits both required and forbidden: {}",
                tdisp::interface_info_names(required & forbidden)
            ));
        }
        let bars = match self.bars {
            None => None,
            Some(list) => {
                let mut set = BTreeSet::new();
                for v in list {
                    if !set.insert(bar_index("bars", v)?) {
                        return Err(format!("bars: BAR {v} listed twice"));
                    }
                }
                Some(set)
            }
        };
        let private_ranges = self
            .private_ranges
            .map(|n| {
                usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= 6)
                    .ok_or_else(|| format!("private_ranges {n} is more than 6 BARs"))
            })
            .transpose()?;
        let mut sizes = BTreeMap::new();
        for (key, size) in self.sizes.unwrap_or_default() {
            let bar = key
                .parse::<u64>()
                .map_err(|_| format!("sizes: key \"{key}\" is not a BAR number"))
                .and_then(|v| bar_index("sizes", v))?;
            if size == 0 || !size.is_multiple_of(tdisp::TDISP_PAGE_SIZE) {
                return Err(format!(
                    "sizes: BAR {bar} size {size} is not a non-zero multiple of 4096"
                ));
            }
            if bars.as_ref().is_some_and(|b| !b.contains(&bar)) {
                return Err(format!("sizes: BAR {bar} is not in bars"));
            }
            sizes.insert(bar, size);
        }
        if let Some(driver) = &self.driver {
            if driver.is_empty() || driver.contains(['/', '\n']) {
                return Err("driver must be a driver name".to_string());
            }
        }
        let mmio_reporting_offset = match self.mmio_reporting_offset {
            Some(v) => offset(v)?,
            None => global_offset,
        };
        let mut measurements = BTreeMap::new();
        for (key, value) in self.measurements.unwrap_or_default() {
            let index = key
                .parse::<u8>()
                .ok()
                .filter(|i| (1..=254).contains(i))
                .ok_or_else(|| {
                    format!("measurements: key \"{key}\" is not a block index 1..254")
                })?;
            let bytes = parse_hex(&value).ok_or_else(|| {
                format!("measurements: block {index}: \"{value}\" is not hex bytes")
            })?;
            measurements.insert(index, bytes);
        }
        let mut root_cert_sha384 = Vec::new();
        for fp in self.root_cert_sha384.unwrap_or_default() {
            let digest = parse_hex(&fp)
                .and_then(|b| <[u8; 48]>::try_from(b).ok())
                .ok_or_else(|| {
                    format!("root_cert_sha384: \"{fp}\" is not 96 hex digits (SHA-384)")
                })?;
            root_cert_sha384.push(digest);
        }
        Ok(Rule {
            name: self.name,
            action,
            vendor: id16("vendor", self.vendor)?,
            device: id16("device", self.device)?,
            class,
            bdf: self.bdf,
            tsm,
            tdisp_version,
            interface_info_required: required,
            interface_info_forbidden: forbidden,
            bars,
            private_ranges,
            sizes,
            driver: self.driver,
            mmio_reporting_offset,
            measurements,
            root_cert_sha384,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("10000:01:*.*", "10000:01:00.0"));
        assert!(glob_match("*", ""));
        assert!(glob_match("1000?:01:00.0", "10000:01:00.0"));
        assert!(!glob_match("10000:01:*.1", "10000:01:00.0"));
        assert!(!glob_match("0000:*", "10000:01:00.0"));
        assert!(glob_match("*0.0", "10000:01:00.0"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
    }
}
