// SPDX-License-Identifier: GPL-2.0

//! PCI functions and TSMs as sysfs shows them.

use crate::sysfs::{errno_name, Sysfs};
use crate::tdisp::Bar;

/// `IORESOURCE_MEM` in a `resource` line's flags.
const IORESOURCE_MEM: u64 = 0x200;

/// Number of standard BARs (`resource` lines 0..=5).
const STANDARD_BARS: usize = 6;

/// The `driver_override` value that holds a function off every driver until it is accepted.
/// No driver has this name, so while it is set nothing binds, whatever `new_id` or
/// `drivers_probe` do.
pub const HOLD: &str = "devsec-agent-hold";

/// Returns the sysfs directory of PCI function `bdf`.
pub fn dev_dir(bdf: &str) -> String {
    format!("bus/pci/devices/{bdf}")
}

/// Identity of a PCI function, from sysfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// `domain:bus:dev.fn`.
    pub bdf: String,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// 24-bit class code.
    pub class: u32,
}

/// Checks that `bdf` has the shape `domain:bus:dev.fn` (hex, domain of any width), so it
/// is safe to use as a path component.
pub fn parse_bdf(bdf: &str) -> Result<(), String> {
    let bad = || format!("\"{bdf}\" is not a PCI address (domain:bus:device.function)");
    let (domain, rest) = bdf.split_once(':').ok_or_else(bad)?;
    let (bus, rest) = rest.split_once(':').ok_or_else(bad)?;
    let (dev, func) = rest.split_once('.').ok_or_else(bad)?;
    let hex = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if hex(domain, 8)
        && bus.len() == 2
        && hex(bus, 2)
        && dev.len() == 2
        && hex(dev, 2)
        && func.len() == 1
        && hex(func, 1)
    {
        Ok(())
    } else {
        Err(bad())
    }
}

fn parse_hex(text: &str) -> Option<u64> {
    let digits = text.trim().strip_prefix("0x")?;
    u64::from_str_radix(digits, 16).ok()
}

fn read_hex(sys: &dyn Sysfs, path: &str) -> Result<u64, String> {
    let text = sys
        .read_str(path)
        .map_err(|e| format!("cannot read {path}: {}", errno_name(&e)))?;
    parse_hex(&text).ok_or_else(|| format!("{path}: \"{text}\" is not a hex number"))
}

impl Function {
    /// Reads the identity of `bdf`.
    pub fn read(sys: &dyn Sysfs, bdf: &str) -> Result<Self, String> {
        parse_bdf(bdf)?;
        let dir = dev_dir(bdf);
        if !sys.exists(&dir) {
            return Err(format!("no PCI function {bdf}"));
        }
        let id16 = |attr: &str| -> Result<u16, String> {
            let path = format!("{dir}/{attr}");
            let v = read_hex(sys, &path)?;
            u16::try_from(v).map_err(|_| format!("{path}: 0x{v:x} is not a 16-bit ID"))
        };
        let class_path = format!("{dir}/class");
        let class = read_hex(sys, &class_path)?;
        Ok(Self {
            bdf: bdf.to_string(),
            vendor: id16("vendor")?,
            device: id16("device")?,
            class: u32::try_from(class)
                .ok()
                .filter(|c| *c <= 0xff_ffff)
                .ok_or_else(|| format!("{class_path}: 0x{class:x} is not a class code"))?,
        })
    }
}

/// Returns whether `bdf` is TEE-capable with a devsec TSM registered: it has `tsm/lock`.
pub fn is_tee_capable(sys: &dyn Sysfs, bdf: &str) -> bool {
    sys.exists(&format!("{}/tsm/lock", dev_dir(bdf)))
}

/// Lists the TEE-capable functions, sorted by BDF.
pub fn tee_functions(sys: &dyn Sysfs) -> Result<Vec<String>, String> {
    let names = sys
        .list("bus/pci/devices")
        .map_err(|e| format!("cannot list bus/pci/devices: {}", errno_name(&e)))?;
    Ok(names
        .into_iter()
        .filter(|bdf| parse_bdf(bdf).is_ok() && is_tee_capable(sys, bdf))
        .collect())
}

/// Returns the name of the driver bound to `bdf`, if any.
pub fn driver(sys: &dyn Sysfs, bdf: &str) -> Result<Option<String>, String> {
    let path = format!("{}/driver", dev_dir(bdf));
    sys.link_name(&path)
        .map_err(|e| format!("cannot read {path}: {}", errno_name(&e)))
}

/// Returns the TSM holding the lock on `bdf` (`tsmN`), if locked.
pub fn lock_holder(sys: &dyn Sysfs, bdf: &str) -> Result<Option<String>, String> {
    let path = format!("{}/tsm/lock", dev_dir(bdf));
    let text = sys
        .read_str(&path)
        .map_err(|e| format!("cannot read {path}: {}", errno_name(&e)))?;
    let holder = text.trim();
    Ok((!holder.is_empty()).then(|| holder.to_string()))
}

/// Returns whether `bdf` is accepted.
pub fn accepted(sys: &dyn Sysfs, bdf: &str) -> Result<bool, String> {
    let path = format!("{}/tsm/accept", dev_dir(bdf));
    match sys
        .read_str(&path)
        .map_err(|e| format!("cannot read {path}: {}", errno_name(&e)))?
        .trim()
    {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(format!("{path}: unexpected value \"{other}\"")),
    }
}

/// Returns the `driver_override` of `bdf`, `None` when unset.
pub fn driver_override(sys: &dyn Sysfs, bdf: &str) -> Result<Option<String>, String> {
    let path = format!("{}/driver_override", dev_dir(bdf));
    let text = sys
        .read_str(&path)
        .map_err(|e| format!("cannot read {path}: {}", errno_name(&e)))?;
    let value = text.trim();
    Ok((!value.is_empty() && value != "(null)").then(|| value.to_string()))
}

/// Parses a sysfs `resource` file into the function's memory BARs (lines 0..=5 with
/// `IORESOURCE_MEM` and a non-empty range). The upper half of a 64-bit BAR reads as zeros
/// and so is skipped.
pub fn parse_resource(text: &str) -> Result<Vec<Bar>, String> {
    let mut bars = Vec::new();
    for (index, line) in text.lines().take(STANDARD_BARS).enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [start, end, flags] = fields.as_slice() else {
            return Err(format!(
                "resource line {index}: \"{line}\" is not START END FLAGS"
            ));
        };
        let parse = |s: &str| {
            parse_hex(s).ok_or_else(|| format!("resource line {index}: \"{s}\" is not hex"))
        };
        let (start, end, flags) = (parse(start)?, parse(end)?, parse(flags)?);
        if flags & IORESOURCE_MEM == 0 || end <= start {
            continue;
        }
        // end > start, so neither the subtraction nor (short of end == u64::MAX) the
        // addition overflows; treat the degenerate case as malformed.
        let len = (end - start)
            .checked_add(1)
            .ok_or_else(|| format!("resource line {index}: range too large"))?;
        bars.push(Bar {
            // index < STANDARD_BARS.
            index: index as u16,
            start,
            len,
        });
    }
    Ok(bars)
}

/// Reads the memory BARs of `bdf`.
pub fn bars(sys: &dyn Sysfs, bdf: &str) -> Result<Vec<Bar>, String> {
    let path = format!("{}/resource", dev_dir(bdf));
    let text = sys
        .read_str(&path)
        .map_err(|e| format!("cannot read {path}: {}", errno_name(&e)))?;
    parse_resource(&text).map_err(|e| format!("{path}: {e}"))
}

/// A registered TSM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tsm {
    /// Class device name, `tsmN` (dynamic).
    pub id: String,
    /// Name of the parent device, which policies use (`devsec_tsm` for the sample).
    pub name: String,
    /// `pci_mode`: `devsec`, `link` or `none`.
    pub pci_mode: String,
}

/// Lists the registered TSMs.
pub fn tsms(sys: &dyn Sysfs) -> Result<Vec<Tsm>, String> {
    if !sys.exists("class/tsm") {
        return Ok(Vec::new());
    }
    let ids = sys
        .list("class/tsm")
        .map_err(|e| format!("cannot list class/tsm: {}", errno_name(&e)))?;
    let mut out = Vec::new();
    for id in ids {
        let dir = format!("class/tsm/{id}");
        let name = sys
            .link_name(&format!("{dir}/device"))
            .map_err(|e| format!("cannot read {dir}/device: {}", errno_name(&e)))?
            .unwrap_or_default();
        let pci_mode = sys.read_str(&format!("{dir}/pci_mode")).unwrap_or_default();
        out.push(Tsm { id, name, pci_mode });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_shapes() {
        assert!(parse_bdf("10000:01:00.0").is_ok());
        assert!(parse_bdf("0000:00:1f.7").is_ok());
        assert!(parse_bdf("10000:01:00").is_err());
        assert!(parse_bdf("../../x:01:00.0").is_err());
        assert!(parse_bdf("10000:1:00.0").is_err());
        assert!(parse_bdf("").is_err());
    }

    #[test]
    fn resource_lines() {
        let text = "0x0000001000000000 0x0000001000003fff 0x0000000000140204\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x000000000000c000 0x000000000000c01f 0x0000000000040101\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x0000002000000000 0x0000002000003fff 0x0000000000140204\n";
        let bars = parse_resource(text).unwrap();
        assert_eq!(
            bars,
            [Bar {
                index: 0,
                start: 0x10_0000_0000,
                len: 16384
            }]
        );
        assert!(parse_resource("0x0 0x1\n").is_err());
        assert!(parse_resource("zz 0x1 0x200\n").is_err());
    }
}
