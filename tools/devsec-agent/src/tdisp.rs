// SPDX-License-Identifier: GPL-2.0

//! TDISP evidence decoding: the kernel sample's codec, included by source, plus the names
//! the agent prints and matches policies against.
//!
//! There is exactly one TDISP codec in the project: `samples/devsec/tdisp/`. Its files are
//! pure `core` Rust (no kernel imports, no allocation, no `unsafe`), so the agent includes
//! the TSM half of it the same way the kernel's devsec TSM does (see `build.rs` for the
//! cfgs). Nothing here re-implements the wire format; this module only wraps the decoders
//! in owned types and adds names for printing.

// The three files are shared with the kernel's devsec TSM and its KUnit suite, which use
// items the agent does not (request encoding, the report assembler, `Requester`, ...).
// Silencing dead code here, and only here, keeps the shared files free of agent-specific
// attributes.
#[allow(dead_code)]
#[path = "../../../samples/devsec/tdisp/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../../../samples/devsec/tdisp/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../../../samples/devsec/tdisp/requester.rs"]
mod requester;

use std::fmt;

/// Unit of `first_page` and `number_of_pages` in interface reports (4 KiB).
pub const TDISP_PAGE_SIZE: u64 = report::TDISP_PAGE_SIZE;

/// Names of the `interface_info` bits of a DEVICE_INTERFACE_REPORT (TDISP 1.0), by bit
/// number. Bit 0 is [`report::interface_info::NO_UPDATE_AFTER_LOCK`]; the shared library
/// only defines the other bits for the device side, so they are named here by number.
pub const INTERFACE_INFO_BITS: [(u8, &str); 5] = [
    (0, "NO_UPDATE_AFTER_LOCK"),
    (1, "DMA_WITHOUT_PASID"),
    (2, "DMA_WITH_PASID"),
    (3, "ATS_ENABLED"),
    (4, "PRS_ENABLED"),
];

/// Names of the LOCK_INTERFACE flags, by bit number (see `codec::lock_flags`).
const LOCK_FLAG_BITS: [(u8, &str); 5] = [
    (0, "NO_FW_UPDATE"),
    (1, "SYSTEM_CACHE_LINE_SIZE"),
    (2, "LOCK_MSIX"),
    (3, "BIND_P2P"),
    (4, "ALL_REQUEST_REDIRECT"),
];

/// Names of the MMIO range attribute bits, by bit number (see `report::range_attr`).
const RANGE_ATTR_BITS: [(u8, &str); 4] = [
    (0, "MSIX_TABLE"),
    (1, "MSIX_PBA"),
    (2, "NON_TEE"),
    (3, "UPDATABLE"),
];

// The name tables must agree with the constants of the shared library where it has them.
const _: () = {
    assert!(report::interface_info::NO_UPDATE_AFTER_LOCK == 1 << 0);
    assert!(codec::lock_flags::NO_FW_UPDATE == 1 << 0);
    assert!(report::range_attr::MSIX_TABLE == 1 << 0);
    assert!(report::range_attr::MSIX_PBA == 1 << 1);
    assert!(report::range_attr::NON_TEE == 1 << 2);
    assert!(report::range_attr::UPDATABLE == 1 << 3);
};

/// Returns the bit number of the `interface_info` bit called `name`.
pub fn interface_info_bit(name: &str) -> Option<u8> {
    INTERFACE_INFO_BITS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(bit, _)| *bit)
}

/// Returns the name of `interface_info` bit `bit`, or `bitN` for bits without a name.
pub fn interface_info_name(bit: u8) -> String {
    bit_name(&INTERFACE_INFO_BITS, bit)
}

fn bit_name(table: &[(u8, &str)], bit: u8) -> String {
    table
        .iter()
        .find(|(b, _)| *b == bit)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("bit{bit}"))
}

/// Formats the set bits of `value` with the names of `table`, or `none`.
fn bit_names(table: &[(u8, &str)], value: u64, width: u8) -> String {
    let names: Vec<String> = (0..width)
        .filter(|bit| value & (1u64 << bit) != 0)
        .map(|bit| bit_name(table, bit))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    }
}

/// Formats `interface_info` bits by name.
pub fn interface_info_names(value: u16) -> String {
    bit_names(&INTERFACE_INFO_BITS, value.into(), 16)
}

/// Decoded TDISP_CAPABILITIES body (`tsm/tdisp_caps`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Device security manager capabilities.
    pub dsm_caps: u32,
    /// Bitmap of supported requests; bit `n` is request code `0x80 + n`.
    pub req_msgs_supported: [u8; 16],
    /// Supported LOCK_INTERFACE flags.
    pub lock_flags_supported: u16,
    /// Width of the DMA addresses the device generates.
    pub dev_addr_width: u8,
    /// Outstanding requests supported on this interface.
    pub num_req_this: u8,
    /// Outstanding requests supported on all interfaces.
    pub num_req_all: u8,
}

impl Caps {
    /// Decodes `tsm/tdisp_caps`: exactly one TDISP_CAPABILITIES body, nothing after it.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = codec::Reader::new(bytes);
        let caps = codec::Capabilities::decode(&mut r)
            .map_err(|e| format!("malformed TDISP capabilities: {e:?}"))?;
        r.finish()
            .map_err(|e| format!("malformed TDISP capabilities: {e:?}"))?;
        Ok(Self {
            dsm_caps: caps.dsm_caps,
            req_msgs_supported: caps.req_msgs_supported,
            lock_flags_supported: caps.lock_flags_supported,
            dev_addr_width: caps.dev_addr_width,
            num_req_this: caps.num_req_this,
            num_req_all: caps.num_req_all,
        })
    }

    /// Returns the supported requests: their specification names, or `0xNN` for codes the
    /// library does not know.
    pub fn supported_requests(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (index, byte) in self.req_msgs_supported.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) == 0 {
                    continue;
                }
                // index < 16, so the code is at most 0x80 + 127.
                let code = 0x80u8 | ((index as u8) << 3) | bit;
                out.push(match codec::MessageType::from_u8(code) {
                    Some(msg) if msg.is_request() => msg.name().to_string(),
                    _ => format!("0x{code:02x}"),
                });
            }
        }
        out
    }

    /// Formats the supported lock flags by name.
    pub fn lock_flag_names(&self) -> String {
        bit_names(&LOCK_FLAG_BITS, self.lock_flags_supported.into(), 16)
    }
}

/// One MMIO range of an interface report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First page in 4 KiB units, including the TSM's MMIO reporting offset.
    pub first_page: u64,
    /// Number of 4 KiB pages.
    pub number_of_pages: u32,
    /// Attribute bits.
    pub attributes: u16,
    /// Range ID: device specific, not a BAR index (ranges are placed in BARs by address).
    pub range_id: u16,
}

/// LOCK_INTERFACE flags the kernel's devsec TSM locks with: NO_FW_UPDATE, not LOCK_MSIX, so
/// MSI-X table and PBA ranges stay shared.
pub const TSM_LOCK_FLAGS: u16 = codec::lock_flags::NO_FW_UPDATE;

/// A range of a report that passed [`Report::check_against_bars`]: the BAR it lies in and
/// whether the TSM treats it as private.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Index of the BAR holding the range.
    pub bar: u16,
    /// Guest physical address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Whether the range is TEE (private) memory.
    pub private: bool,
    /// The reported range ID.
    pub range_id: u16,
}

impl Range {
    /// Bit of [`Range::attributes`] marking a range that is not TEE (private) memory.
    pub const NON_TEE: u16 = report::range_attr::NON_TEE;

    /// Returns the size of the range in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.number_of_pages) * TDISP_PAGE_SIZE
    }

    /// Returns the guest physical address of the range with `offset` (the TSM's MMIO
    /// reporting offset) removed, or `None` if the reported address is below the offset.
    pub fn address(&self, offset: u64) -> Option<u64> {
        self.first_page
            .checked_mul(TDISP_PAGE_SIZE)
            .and_then(|addr| addr.checked_sub(offset))
    }

    /// Returns whether the range is TEE (private) memory for the devsec TSM: neither
    /// NON_TEE nor, as the TSM does not lock MSI-X ([`TSM_LOCK_FLAGS`]), the MSI-X table or
    /// PBA.
    pub fn is_private(&self) -> bool {
        let shared = Self::NON_TEE | report::range_attr::MSIX_TABLE | report::range_attr::MSIX_PBA;
        self.attributes & shared == 0
    }

    /// Formats the attribute bits by name.
    pub fn attribute_names(&self) -> String {
        bit_names(&RANGE_ATTR_BITS, self.attributes.into(), 16)
    }
}

/// Decoded DEVICE_INTERFACE_REPORT (`tsm/interface_report`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `interface_info` bits.
    pub interface_info: u16,
    /// MSI-X message control register value.
    pub msi_x_message_control: u16,
    /// LN requester control register value.
    pub lnr_control: u16,
    /// TPH control register value.
    pub tph_control: u32,
    /// The MMIO ranges, in report order.
    pub ranges: Vec<Range>,
    /// The device-specific blob.
    pub device_specific: Vec<u8>,
    decoded: report::InterfaceReport,
}

impl Report {
    /// Decodes and structurally validates `tsm/interface_report`.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let decoded = report::InterfaceReport::decode(bytes)
            .map_err(|e| format!("malformed interface report: {e:?}"))?;
        let ranges = decoded
            .ranges()
            .iter()
            .map(|r| Range {
                first_page: r.first_page,
                number_of_pages: r.number_of_pages,
                attributes: r.attributes,
                range_id: r.range_id,
            })
            .collect();
        let device_specific = decoded
            .device_specific
            .get(..decoded.device_specific_len)
            .unwrap_or(&[])
            .to_vec();
        Ok(Self {
            interface_info: decoded.interface_info,
            msi_x_message_control: decoded.msi_x_message_control,
            lnr_control: decoded.lnr_control,
            tph_control: decoded.tph_control,
            ranges,
            device_specific,
            decoded,
        })
    }

    /// Checks the report against the function's memory BARs exactly as the kernel's devsec
    /// TSM does (`check_report_against_bars()`, with [`TSM_LOCK_FLAGS`]): every range, after
    /// removing `offset`, page aligned inside exactly one BAR, no overlaps, every BAR
    /// reported, no reserved bits, no UPDATABLE range. Returns where the ranges lie.
    pub fn check_against_bars(&self, bars: &[Bar], offset: u64) -> Result<Vec<Placed>, String> {
        let bars: Vec<report::Bar> = bars
            .iter()
            .map(|b| report::Bar {
                index: b.index,
                start: b.start,
                len: b.len,
            })
            .collect();
        let checked =
            requester::check_report_against_bars(&self.decoded, &bars, offset, TSM_LOCK_FLAGS)
                .map_err(|e| {
                    use requester::ReportCheckError as E;
                    match e {
                        E::TooManyBars => "the function has too many BARs".to_string(),
                        E::ReservedInterfaceInfo(bits) => {
                            format!("interface_info has reserved bits 0x{bits:04x}")
                        }
                        E::BadAttributes {
                            range_id,
                            attributes,
                        } => format!("range {range_id} has reserved attributes 0x{attributes:04x}"),
                        E::Updatable { range_id } => format!("range {range_id} is UPDATABLE"),
                        E::EmptyRange { range_id } => format!("range {range_id} is empty"),
                        E::Misaligned { range_id } => format!(
                            "range {range_id} is not page aligned (reporting offset 0x{offset:x})"
                        ),
                        E::OutsideBars { range_id } => format!(
                            "range {range_id} is not inside a memory BAR of the function (reporting offset 0x{offset:x})"
                        ),
                        E::AmbiguousBar { range_id } => {
                            format!("range {range_id} lies in two BARs")
                        }
                        E::Overlap { range_id } => {
                            format!("range {range_id} overlaps an earlier range")
                        }
                        E::BarNotReported { bar } => format!("BAR {bar} has no range in the report"),
                    }
                })?;
        Ok(checked
            .ranges()
            .iter()
            .map(|r| Placed {
                bar: r.bar,
                start: r.start,
                len: r.len,
                private: r.private,
                range_id: r.range_id,
            })
            .collect())
    }
}

/// A memory BAR of a PCI function, from its sysfs `resource` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// BAR index (0..=5).
    pub index: u16,
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl fmt::Display for Bar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BAR{} 0x{:x} {} bytes", self.index, self.start, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_info_names_by_bit() {
        assert_eq!(
            interface_info_names(0x3),
            "NO_UPDATE_AFTER_LOCK DMA_WITHOUT_PASID"
        );
        assert_eq!(interface_info_names(0x8001), "NO_UPDATE_AFTER_LOCK bit15");
        assert_eq!(interface_info_names(0), "none");
        assert_eq!(interface_info_bit("DMA_WITHOUT_PASID"), Some(1));
        assert_eq!(interface_info_bit("NOPE"), None);
    }

    #[test]
    fn caps_reject_trailing_and_short() {
        let mut caps = vec![0u8; 28];
        assert!(Caps::decode(&caps).is_ok());
        caps.push(0);
        assert!(Caps::decode(&caps).is_err());
        assert!(Caps::decode(&caps[..27]).is_err());
    }

    #[test]
    fn caps_name_requests() {
        let mut caps = Caps::decode(&[0u8; 28]).unwrap();
        caps.req_msgs_supported[0] = 0x06;
        caps.req_msgs_supported[15] = 0x80;
        assert_eq!(
            caps.supported_requests(),
            ["GET_TDISP_VERSION", "GET_TDISP_CAPABILITIES", "0xff"]
        );
    }
}
