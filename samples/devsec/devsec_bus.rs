// SPDX-License-Identifier: GPL-2.0

//! Emulated PCI host bridge with TDISP endpoints (devsec sample).
//!
//! Registers a software PCI host bridge in the first emulated PCI domain (0x10000) with root
//! bus 1, below a faux device `devsec_bus`. Its endpoints (`endpoints=N`, 1..=256) are TDISP
//! devices that the kernel's own PCI and DOE cores drive through configuration cycles:
//!
//! - vendor 0x1b36, device 0x0d5c, class 0xff0000, header type 0;
//! - a PCI Express capability (Root Complex integrated endpoint) with `DEVCAP.TEE`;
//! - BAR0: 64-bit non-prefetchable memory, 16 KiB, assigned by the PCI core from a window
//!   claimed from unused physical address space; with `bar2=1` also BAR2, 64-bit, 4 KiB;
//! - a DOE extended capability at 0x100 answering DOE Discovery and CMA/SPDM: SPDM 1.2 to an
//!   [`spdm::Responder`] (see `bus_spdm.rs` for its identity), and, once SPDM algorithms are
//!   negotiated, TDISP in VENDOR_DEFINED requests to a [`tdisp::Responder`]; a VENDOR_DEFINED
//!   request before that goes to the SPDM responder, which refuses it (UnexpectedRequest);
//!   with `spdm=0` TDISP is taken without negotiation, as by a device that does not require
//!   authentication (for benchmarks of the driver core that RSA signing would dominate);
//! - an IDE extended capability (one selective stream) at 0x180.
//!
//! Endpoint `i` sits at slot `i % 32`, function `i / 32`: the first 32 are single-function
//! devices 00.0 ... 1f.0, further ones become functions of those slots.
//!
//! With `vfs=N` (1..=7, at most 32 endpoints) every endpoint is an SR-IOV physical function: an
//! SR-IOV extended capability at 0x200 offers N virtual functions (device 0x0d5d) at functions
//! 1..=N of its slot, each with a 16 KiB VF BAR0. They appear when the PF's driver enables
//! them through the PCI core (`pci_enable_sriov()`). Each VF is a TDISP interface of its own,
//! with its requester ID as interface ID, a PCI Express capability with `DEVCAP.TEE` and no
//! extended capabilities: the PF is its device security manager, and its TDISP messages go
//! through the PF's DOE mailbox. Disabling memory decoding of the VFs (VF MSE), a VF's bus
//! mastering or reprogramming VF BAR0 is a configuration change for the VFs; clearing VF
//! Enable makes them vanish, and they come back CONFIG_UNLOCKED. The PF's own interface does
//! not cover its SR-IOV capability.
//!
//! The TDISP interface ID of an endpoint is its requester ID (bus << 8 | devfn) without a
//! segment. Its interface report describes its BARs as currently programmed: by default one
//! range covering each, or for BAR0 the layout chosen in debugfs (`report_layout`), BAR2 (if
//! any) then reported whole.
//!
//! Configuration cycles reach an endpoint in atomic context, possibly under the PCI core's raw
//! `pci_lock` (config writes from user space), where the kernel's CRNG may not be used. Each
//! endpoint therefore keeps a small pool of start nonces drawn in process context: filled when
//! the endpoint is created, and refilled by a work item after a LOCK_INTERFACE_REQUEST took
//! one. An endpoint whose pool is empty (more LOCKs in a row than the pool holds, before the
//! work item ran) answers INSUFFICIENT_ENTROPY, whoever drives its DOE mailbox.
//!
//! SPDM responses are signed with the kernel's crypto API, which sleeps, so they cannot be
//! made in a configuration cycle either: an SPDM request keeps the mailbox BUSY and the same
//! work item answers it (the DOE core polls for DATA_OBJECT_READY); an ABORT meanwhile drops
//! the answer. TDISP requests are answered at once.
//!
//! Per function (PF or VF), `/sys/kernel/debug/devsec_bus/<pci name>/` has:
//!
//! - `tdisp_state` (read): `CONFIG_UNLOCKED`, `CONFIG_LOCKED`, `RUN` or `ERROR`.
//! - `spdm_state` (read, PFs only): the SPDM connection state of the endpoint: `none` (no
//!   SPDM request yet), `NOT_STARTED`, `AFTER_VERSION`, `AFTER_CAPABILITIES`, `NEGOTIATED` or
//!   `AUTHENTICATED` (CHALLENGE_AUTH sent).
//! - `fault` (write one word): `error` (go to ERROR now), `report_range` (report range off by a
//!   page), `report_count` (a range missing), `report_truncated` (report cut short),
//!   `report_changed` (device-specific data differ from the report at lock time, the report
//!   otherwise valid), `report_missing` (every report request refused),
//!   `bad_nonce` (the next START in CONFIG_LOCKED fails with INVALID_NONCE),
//!   `error_after_start` (the next successful START is followed at once by ERROR),
//!   `spdm_refuses` (the next request is answered with SPDM ERROR UNSUPPORTED_REQUEST, as by
//!   an SPDM responder that takes no VENDOR_DEFINED requests), `doe_busy`
//!   (mailbox BUSY; each request fails until `none`), `doe_timeout` (requests are accepted but
//!   never answered), `no_entropy` (every LOCK_INTERFACE_REQUEST gets INSUFFICIENT_ENTROPY),
//!   `none` (clear all). Read: the active faults, or `none`. The last three are faults of the
//!   endpoint; set on a VF, they act on its PF, which answers for it. So are the SPDM faults,
//!   each armed until `none`: `spdm_challenge_bad_sig` and `spdm_meas_bad_sig` (CHALLENGE_AUTH
//!   or MEASUREMENTS signed wrongly), `spdm_untrusted_root` (the chain ends in another root),
//!   `spdm_malformed_cert` (the leaf certificate is not valid X.509), `spdm_forged_cert` (the
//!   leaf certificate's signature is not its issuer's), `spdm_measurement_changes`
//!   (the firmware measurement changes after the next MEASUREMENTS), `spdm_stale_nonce`
//!   (MEASUREMENTS answers another nonce than the one asked with: a replay),
//!   `spdm_truncated_cert` (CERTIFICATE responses cut short), `spdm_bad_algorithms`
//!   (ALGORITHMS selects ECDSA P-384), `spdm_no_measurements` (ALGORITHMS selects no
//!   measurement specification) and `spdm_short_portions` (CERTIFICATE portions of 16 bytes).
//! - `report_layout` (write one word; read: the current one): the interface report layout of
//!   BAR0 (four 4 KiB pages) from the next LOCK_INTERFACE on: `bar` (one range, the default),
//!   `msix` (pages 0-1, then the MSI-X table and the MSI-X PBA ranges, pages 2 and 3),
//!   `non_tee` (page 0 NON_TEE, pages 1-3), `multi` (four one-page ranges), `inside` (pages
//!   1-2 only: a range starting inside the BAR), `updatable` (the whole BAR, UPDATABLE). The
//!   device has no MSI-X capability; the layouts exercise what the TSM makes of the report.
//! - `remove` (write `1`, PFs only): surprise removal; the function and its VFs stop answering
//!   configuration cycles and its `pci_dev` is removed. The directory stays until the module is
//!   unloaded.
//!
//! `/sys/kernel/debug/devsec_bus/spdm/sign_ns` (read) is the time the endpoints spent signing
//! SPDM responses since the module was loaded, in nanoseconds: the device's share of an SPDM
//! exchange, which `make bench` tells apart from the TSM's.

use kernel::{
    bindings,
    debugfs::{
        Dir,
        Scope, //
    },
    device::Device,
    devres::Devres,
    faux, fmt,
    pci::host::{
        self,
        config_offset,
        AccessSize,
        ConfigError,
        ConfigSpace,
        HostBridge,
        MemWindow, //
    },
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        new_mutex,
        new_raw_spinlock_irq,
        Arc,
        Mutex,
        RawSpinLockIrq, //
    },
    uaccess::UserSliceReader,
    workqueue::{
        self,
        impl_has_work,
        new_work,
        Work,
        WorkItem, //
    },
};

/// The device side of the TDISP library in `tdisp/`.
mod tdisp {
    mod codec;
    mod doe;
    mod report;
    mod responder;

    pub(crate) use codec::*;
    pub(crate) use doe::*;
    pub(crate) use report::*;
    pub(crate) use responder::*;

    // doe.rs depends only on `core`: check its DOE numbers against the kernel's.
    const _: () = assert!(DOE_TYPE_DISCOVERY as u32 == kernel::bindings::PCI_DOE_FEATURE_DISCOVERY);
    const _: () = assert!(DOE_TYPE_CMA as u32 == kernel::bindings::PCI_DOE_FEATURE_CMA);
    const _: () = assert!(VENDOR_ID_PCI_SIG as u32 == kernel::bindings::PCI_VENDOR_ID_PCI_SIG);
}

/// The device side of the SPDM library in `spdm/`.
mod spdm {
    mod codec;
    mod responder;
    mod transcript;

    pub(crate) use codec::*;
    pub(crate) use responder::*;
    pub(crate) use transcript::*;
}

mod bus_spdm;
mod spdm_hash;

use bus_spdm::{SpdmEndpoint, SpdmFaults, SPDM_FAULT_NAMES};

module! {
    type: DevsecBus,
    name: "devsec_bus",
    authors: ["coco-accept"],
    description: "Emulated PCI host bridge with TDISP endpoints",
    license: "GPL",
    params: {
        endpoints: u32 {
            default: 1,
            description: "Number of emulated TDISP endpoints (1..=256)",
        },
        bar2: u32 {
            default: 0,
            description: "1: every endpoint also has BAR2, a 64-bit 4 KiB memory BAR",
        },
        vfs: u32 {
            default: 0,
            description: "SR-IOV virtual functions per endpoint (0..=7; needs endpoints <= 32)",
        },
        spdm: u32 {
            default: 1,
            description: "0: endpoints take TDISP requests without SPDM negotiation first",
        },
    },
}

/// Returns the 0/1 module parameter `name` of value `value` as a `bool`.
fn flag(name: &str, value: u32) -> Result<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => {
            pr_err!("{}={} is neither 0 nor 1\n", name, other);
            Err(EINVAL)
        }
    }
}

/// Root bus number of the emulated host bridge.
const BUSNR: u8 = 1;
/// Functions per bus.
const MAX_ENDPOINTS: usize = 256;
/// Slots per bus.
const SLOTS: usize = 32;

/// Size of BAR0.
const BAR0_SIZE: u64 = 16 * 1024;
/// Size of BAR2 (with `bar2=1`).
const BAR2_SIZE: u64 = 4 * 1024;
/// Size of the memory window: room for BAR0 and BAR2 of every possible endpoint (or BAR0 and
/// the VF BARs of 32 SR-IOV endpoints), rounded up to a power of two for its alignment.
const WINDOW_SIZE: u64 = (MAX_ENDPOINTS as u64 * (BAR0_SIZE + BAR2_SIZE)).next_power_of_two();
/// Lowest address of the memory window: far above the RAM of any test machine.
const WINDOW_MIN: u64 = 1 << 36;

/// Converts a 16-bit register value or mask from `bindings` (`u32`) in constant context.
const fn word(value: u32) -> u16 {
    assert!(value <= u16::MAX as u32, "not a 16-bit value");
    // CAST: checked above.
    value as u16
}

// Identity of the emulated function.
const VENDOR_ID: u32 = 0x1b36;
const DEVICE_ID: u32 = 0x0d5c;
const VF_DEVICE_ID: u32 = 0x0d5d;
const CLASS: u32 = 0xff0000;
const REVISION: u32 = 0x01;

// Type 0 configuration header: dword offsets of the registers the function implements.
const VENDOR_DWORD: u16 = config_offset(bindings::PCI_VENDOR_ID);
const COMMAND_DWORD: u16 = config_offset(bindings::PCI_COMMAND);
const CLASS_DWORD: u16 = config_offset(bindings::PCI_CLASS_REVISION);
const CACHE_LINE_DWORD: u16 = config_offset(bindings::PCI_CACHE_LINE_SIZE);
const BAR0_DWORD: u16 = config_offset(bindings::PCI_BASE_ADDRESS_0);
const BAR1_DWORD: u16 = config_offset(bindings::PCI_BASE_ADDRESS_1);
const BAR2_DWORD: u16 = config_offset(bindings::PCI_BASE_ADDRESS_2);
const BAR3_DWORD: u16 = config_offset(bindings::PCI_BASE_ADDRESS_3);
const SUBSYSTEM_DWORD: u16 = config_offset(bindings::PCI_SUBSYSTEM_VENDOR_ID);
const CAP_LIST_DWORD: u16 = config_offset(bindings::PCI_CAPABILITY_LIST);
const INTERRUPT_DWORD: u16 = config_offset(bindings::PCI_INTERRUPT_LINE);

/// The bits of the Command register the function implements.
const COMMAND_WRITABLE: u16 = word(
    bindings::PCI_COMMAND_MEMORY
        | bindings::PCI_COMMAND_MASTER
        | bindings::PCI_COMMAND_PARITY
        | bindings::PCI_COMMAND_SERR
        | bindings::PCI_COMMAND_INTX_DISABLE,
);
/// The bits of a VF's Command register: Memory Space Enable is read-only zero in a VF.
const VF_COMMAND_WRITABLE: u16 =
    word(bindings::PCI_COMMAND_MASTER | bindings::PCI_COMMAND_PARITY | bindings::PCI_COMMAND_SERR);
/// The Command bits whose clearing is a configuration change for TDISP.
const COMMAND_DECODE: u16 = word(bindings::PCI_COMMAND_MEMORY | bindings::PCI_COMMAND_MASTER);

/// Shift of a header field within its dword.
const fn byte_shift(reg: u32) -> u32 {
    8 * (reg % 4)
}

// PCI Express capability, version 2, of a Root Complex integrated endpoint.
const PCIE_CAP: u16 = 0x40;
const PCIE_FLAGS: u32 =
    2 | (bindings::PCI_EXP_TYPE_RC_END << bindings::PCI_EXP_FLAGS_TYPE.trailing_zeros());
const PCIE_DEVCAP: u16 = PCIE_CAP + config_offset(bindings::PCI_EXP_DEVCAP);
const PCIE_DEVCTL: u16 = PCIE_CAP + config_offset(bindings::PCI_EXP_DEVCTL);
const PCIE_DEVCTL2: u16 = PCIE_CAP + config_offset(bindings::PCI_EXP_DEVCTL2);

// DOE extended capability.
const DOE_CAP: u16 = 0x100;
const DOE_CAPABILITIES: u16 = DOE_CAP + config_offset(bindings::PCI_DOE_CAP);
const DOE_CTRL: u16 = DOE_CAP + config_offset(bindings::PCI_DOE_CTRL);
const DOE_STATUS: u16 = DOE_CAP + config_offset(bindings::PCI_DOE_STATUS);
const DOE_WRITE: u16 = DOE_CAP + config_offset(bindings::PCI_DOE_WRITE);
const DOE_READ: u16 = DOE_CAP + config_offset(bindings::PCI_DOE_READ);

// IDE extended capability: selective streams, one stream, no address association blocks.
const IDE_CAP: u16 = 0x180;
const IDE_CAPABILITIES: u16 = IDE_CAP + config_offset(bindings::PCI_IDE_CAP);
const IDE_CAP_VALUE: u32 = bindings::PCI_IDE_CAP_SELECTIVE
    | bindings::PCI_IDE_CAP_IDE_KM
    | bindings::PCI_IDE_CAP_TEE_LIMITED;
const IDE_CTL: u16 = IDE_CAP + config_offset(bindings::PCI_IDE_CTL);
/// Selective IDE stream 0: with no link streams, it starts where link stream 0 would.
const IDE_SEL_STREAM_0: u16 = IDE_CAP + config_offset(bindings::PCI_IDE_LINK_STREAM_0);
const IDE_SEL_CTL: u16 = IDE_SEL_STREAM_0 + config_offset(bindings::PCI_IDE_SEL_CTL);
const IDE_SEL_RID_1: u16 = IDE_SEL_STREAM_0 + config_offset(bindings::PCI_IDE_SEL_RID_1);
const IDE_SEL_RID_2: u16 = IDE_SEL_STREAM_0 + config_offset(bindings::PCI_IDE_SEL_RID_2);

// SR-IOV extended capability of a PF: TotalVFs = InitialVFs = `vfs`, First VF Offset 1 and VF
// Stride 1 (the VFs are functions 1 and up of the PF's slot), VF BAR0 like the PF's BAR0.
const SRIOV_CAP: u16 = 0x200;
const SRIOV_CTRL: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_CTRL);
const SRIOV_VFS: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_INITIAL_VF);
const SRIOV_NUM_VF: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_NUM_VF);
const SRIOV_VF_OFFSET: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_VF_OFFSET);
/// The dword holding VF Device ID (the upper half).
const SRIOV_VF_DID: u16 = (SRIOV_CAP + config_offset(bindings::PCI_SRIOV_VF_DID)) & !3;
const SRIOV_SUP_PGSIZE: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_SUP_PGSIZE);
const SRIOV_SYS_PGSIZE: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_SYS_PGSIZE);
const SRIOV_BAR0: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_BAR);
const SRIOV_BAR1: u16 = SRIOV_BAR0 + 4;
/// The last dword of the SR-IOV capability.
const SRIOV_LAST: u16 = SRIOV_CAP + config_offset(bindings::PCI_SRIOV_VFM);
/// The SR-IOV Control bits the PF implements.
const SRIOV_CTRL_WRITABLE: u16 = word(bindings::PCI_SRIOV_CTRL_VFE | bindings::PCI_SRIOV_CTRL_MSE);
/// Supported Page Sizes: 4 KiB (bit 0) up to 64 KiB; BAR0_SIZE is a multiple of all.
const SUPPORTED_PAGE_SIZES: u32 = 0xf;
/// The most VFs of an endpoint: functions 1..=7 of its slot.
const MAX_VFS: usize = 7;
const _: () = assert!(SRIOV_VF_DID == SRIOV_VF_OFFSET + 4 && SRIOV_NUM_VF == SRIOV_VFS + 4);

/// Builds an extended capability header.
const fn ext_cap_header(id: u32, next: u16) -> u32 {
    id | (1 << 16) | ((next as u32) << 20)
}

/// DOE write mailbox capacity in bytes; far above the largest TDISP request.
const DOE_WBUF: usize = 256;
/// DOE read mailbox capacity in bytes: header and the largest TDISP response.
const DOE_RBUF: usize = 8 + max(tdisp::MAX_MESSAGE_LEN, bus_spdm::RESPONSE_LEN).next_multiple_of(4);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Start nonces an endpoint keeps ready (see the module documentation).
const NONCE_POOL_LEN: usize = 4;

/// Returns a nonce from the kernel's CRNG.
///
/// Process context only: `get_random_bytes()` takes a `spinlock_t`, which must not nest in the
/// endpoint's raw spinlock nor in the PCI core's raw `pci_lock`.
fn draw_nonce() -> tdisp::Nonce {
    let mut nonce = tdisp::Nonce::default();
    fill_random(&mut nonce);
    nonce
}

/// Fills `buf` from the kernel's CRNG. Process context only.
fn fill_random(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}

/// Start nonces drawn in advance, in process context.
struct NoncePool {
    nonces: [tdisp::Nonce; NONCE_POOL_LEN],
    len: usize,
}

impl NoncePool {
    /// Returns a full pool. Process context only (see [`draw_nonce`]).
    fn new() -> Self {
        Self {
            nonces: core::array::from_fn(|_| draw_nonce()),
            len: NONCE_POOL_LEN,
        }
    }

    fn is_full(&self) -> bool {
        self.len == NONCE_POOL_LEN
    }

    /// Takes a nonce out of the pool; its slot is cleared.
    fn take(&mut self) -> Option<tdisp::Nonce> {
        self.len = self.len.checked_sub(1)?;
        self.nonces.get_mut(self.len).map(core::mem::take)
    }

    /// Adds `nonce` unless the pool is full.
    fn put(&mut self, nonce: tdisp::Nonce) {
        if let Some(slot) = self.nonces.get_mut(self.len) {
            *slot = nonce;
            self.len += 1;
        }
    }
}

/// State of a DOE mailbox.
struct Doe {
    busy: bool,
    error: bool,
    ready: bool,
    wbuf: [u8; DOE_WBUF],
    wlen: usize,
    rbuf: [u8; DOE_RBUF],
    rlen: usize,
    rpos: usize,
}

impl Doe {
    const fn new() -> Self {
        Self {
            busy: false,
            error: false,
            ready: false,
            wbuf: [0; DOE_WBUF],
            wlen: 0,
            rbuf: [0; DOE_RBUF],
            rlen: 0,
            rpos: 0,
        }
    }

    /// ABORT: drop the request and the response, clear BUSY and ERROR.
    fn abort(&mut self) {
        self.busy = false;
        self.error = false;
        self.ready = false;
        self.wlen = 0;
        self.rlen = 0;
        self.rpos = 0;
    }

    fn status(&self) -> u32 {
        let mut status = 0;
        if self.busy {
            status |= bindings::PCI_DOE_STATUS_BUSY;
        }
        if self.error {
            status |= bindings::PCI_DOE_STATUS_ERROR;
        }
        if self.ready {
            status |= bindings::PCI_DOE_STATUS_DATA_OBJECT_READY;
        }
        status
    }

    /// A dword written to the write mailbox is appended to the request.
    fn push(&mut self, dword: u32) {
        match self.wbuf.get_mut(self.wlen..self.wlen + 4) {
            Some(dst) if !self.busy && !self.error => {
                dst.copy_from_slice(&dword.to_le_bytes());
                self.wlen += 4;
            }
            // Overflow or a write while busy: the request is malformed.
            _ => {
                self.error = true;
                self.wlen = 0;
            }
        }
    }

    /// Reading the read mailbox returns the current response dword, 0 if there is none.
    fn peek(&self) -> u32 {
        if !self.ready {
            return 0;
        }
        self.rbuf
            .get(self.rpos..self.rpos + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    /// Writing the read mailbox consumes the current response dword.
    fn advance(&mut self) {
        if !self.ready {
            return;
        }
        self.rpos += 4;
        if self.rpos >= self.rlen {
            self.ready = false;
            self.rlen = 0;
            self.rpos = 0;
        }
    }

    /// Queues a response object: header dwords, then `payload_len` bytes already in
    /// `rbuf[8..]`, zero-padded to a dword.
    fn respond(&mut self, object_type: u8, payload_len: usize) -> bool {
        let Ok(hdr) =
            tdisp::DoeHeader::for_payload(tdisp::VENDOR_ID_PCI_SIG, object_type, payload_len)
        else {
            return false;
        };
        let [dw0, dw1] = hdr.encode();
        let len = 8 + payload_len.next_multiple_of(4);
        let Some(obj) = self.rbuf.get_mut(..len) else {
            return false;
        };
        obj[..4].copy_from_slice(&dw0.to_le_bytes());
        obj[4..8].copy_from_slice(&dw1.to_le_bytes());
        obj[8 + payload_len..].fill(0);
        self.rlen = len;
        self.rpos = 0;
        self.ready = true;
        true
    }
}

/// Faults of the endpoint as a whole, its mailbox and its entropy source, that persist until
/// cleared (see the module documentation).
#[derive(Clone, Copy, Default)]
struct DeviceFaults {
    doe_busy: bool,
    doe_timeout: bool,
    no_entropy: bool,
}

/// The SPDM side of an endpoint's mailbox: SPDM requests are answered in process context by
/// the emulator's work item (signing sleeps), TDISP ones at once.
struct SpdmMailbox {
    /// A request waits for the work item; the mailbox is BUSY meanwhile.
    pending: bool,
    /// The waiting request.
    req: [u8; DOE_WBUF],
    len: usize,
    /// Counts ABORTs, so that the work item drops the answer to an aborted request.
    epoch: u32,
    /// Algorithms are negotiated: VENDOR_DEFINED requests (TDISP) are taken.
    negotiated: bool,
    /// VENDOR_DEFINED requests need negotiation first (not with `spdm=0`).
    required: bool,
    faults: SpdmFaults,
}

impl SpdmMailbox {
    const fn new() -> Self {
        Self {
            pending: false,
            req: [0; DOE_WBUF],
            len: 0,
            epoch: 0,
            negotiated: false,
            required: true,
            faults: SpdmFaults::NONE,
        }
    }
}

/// A TDISP interface: the physical function's own, or that of one of its virtual functions.
struct Tdi {
    responder: tdisp::Responder,
    /// The report layout of the next LOCK_INTERFACE.
    layout: Layout,
    /// The next START in CONFIG_LOCKED fails with INVALID_NONCE.
    bad_nonce: bool,
    /// The next successful START is followed at once by ERROR.
    error_after_start: bool,
    /// The next request is answered with SPDM ERROR UNSUPPORTED_REQUEST.
    spdm_refuses: bool,
}

impl Tdi {
    /// Returns the interface of the function with requester ID `rid`, CONFIG_UNLOCKED.
    fn new(rid: u16) -> Self {
        Self {
            responder: tdisp::Responder::new(tdisp::function_id(rid, None)),
            layout: Layout::Bar,
            bad_nonce: false,
            error_after_start: false,
            spdm_refuses: false,
        }
    }

    /// Writes `value` to the function's Command register `command`, of which the bits in
    /// `writable` are implemented; disabling decoding is a configuration change.
    fn write_command(&mut self, command: &mut u16, value: u32, writable: u16) {
        // CAST: the Command register is the low half of its dword.
        let new = value as u16 & writable;
        let cleared = *command & !new & COMMAND_DECODE;
        *command = new;
        if cleared != 0 {
            self.responder.config_changed();
        }
    }

    /// Tells the responder where the function's BAR0 is, and BAR2 if it has one.
    fn set_bar(&mut self, start: u64, bar2: Option<u64>) {
        let bars = [
            tdisp::Bar {
                index: 0,
                start,
                len: BAR0_SIZE,
            },
            tdisp::Bar {
                index: 2,
                start: bar2.unwrap_or(0),
                len: BAR2_SIZE,
            },
        ];
        let count = if bar2.is_some() { 2 } else { 1 };
        // Two BARs always fit; `set_bars()` moves a locked interface to ERROR.
        let _ = self.responder.set_bars(bars.get(..count).unwrap_or(&[]));
    }
}

/// The configuration registers of a virtual function that are not shared with its PF.
struct VirtFn {
    rid: u16,
    command: u16,
    devctl: u16,
    devctl2: u16,
    tdi: Tdi,
}

impl VirtFn {
    fn new(rid: u16) -> Self {
        Self {
            rid,
            command: 0,
            devctl: 0,
            devctl2: 0,
            tdi: Tdi::new(rid),
        }
    }

    fn read_dword(&self, offset: u16) -> u32 {
        match offset {
            // A VF's Vendor and Device ID read as all ones (PCIe r6.0 sec 9.3.4.1.1).
            VENDOR_DWORD => u32::MAX,
            COMMAND_DWORD => {
                u32::from(self.command)
                    | (bindings::PCI_STATUS_CAP_LIST << byte_shift(bindings::PCI_STATUS))
            }
            CLASS_DWORD => (CLASS << 8) | REVISION,
            SUBSYSTEM_DWORD => VENDOR_ID | (VF_DEVICE_ID << 16),
            CAP_LIST_DWORD => u32::from(PCIE_CAP),
            PCIE_CAP => {
                bindings::PCI_CAP_ID_EXP | (PCIE_FLAGS << byte_shift(bindings::PCI_EXP_FLAGS))
            }
            PCIE_DEVCAP => bindings::PCI_EXP_DEVCAP_TEE,
            PCIE_DEVCTL => u32::from(self.devctl),
            PCIE_DEVCTL2 => u32::from(self.devctl2),
            // The BARs live in the PF's SR-IOV capability; no extended capabilities.
            _ => 0,
        }
    }

    fn write_dword(&mut self, offset: u16, merge: impl Fn(u32) -> u32) {
        match offset {
            // Memory Space Enable of a VF is read-only zero: VF MSE in the PF decodes.
            COMMAND_DWORD => {
                let value = merge(u32::from(self.command));
                self.tdi
                    .write_command(&mut self.command, value, VF_COMMAND_WRITABLE);
            }
            PCIE_DEVCTL => self.devctl = merge(u32::from(self.devctl)) as u16,
            PCIE_DEVCTL2 => self.devctl2 = merge(u32::from(self.devctl2)) as u16,
            _ => {}
        }
    }
}

/// The SR-IOV capability of a physical function and its virtual functions.
struct Sriov {
    ctrl: u16,
    num_vfs: u16,
    sys_pgsize: u32,
    /// VF BAR0 address bits (VF BAR0 low | VF BAR1 << 32); VF `k` decodes at
    /// `bar + k * BAR0_SIZE`.
    bar: u64,
    /// TotalVFs of them, at function numbers 1 and up of the PF's slot.
    vfs: KVec<VirtFn>,
}

impl Sriov {
    /// Returns the capability of the PF at `devfn` with `total` VFs.
    fn new(devfn: u8, total: usize) -> Result<Self> {
        let mut vfs = KVec::with_capacity(total, GFP_KERNEL)?;
        for k in 0..total {
            vfs.push(VirtFn::new(vf_rid(devfn, k)), GFP_KERNEL)?;
        }
        Ok(Self {
            ctrl: 0,
            num_vfs: 0,
            sys_pgsize: 0,
            bar: 0,
            vfs,
        })
    }

    fn total(&self) -> u32 {
        // CAST: at most `MAX_VFS` VFs.
        self.vfs.len() as u32
    }

    /// The VF at index `k` (function `k + 1`), if VF Enable is set and NumVFs covers it.
    fn vf(&self, k: usize) -> Option<&VirtFn> {
        if self.enabled(k) {
            self.vfs.get(k)
        } else {
            None
        }
    }

    fn vf_mut(&mut self, k: usize) -> Option<&mut VirtFn> {
        if self.enabled(k) {
            self.vfs.get_mut(k)
        } else {
            None
        }
    }

    /// VF Enable is set.
    fn vf_enable(&self) -> bool {
        u32::from(self.ctrl) & bindings::PCI_SRIOV_CTRL_VFE != 0
    }

    /// The number of VFs that exist: NumVFs while VF Enable is set, else none.
    fn live(&self) -> usize {
        if self.vf_enable() {
            usize::from(self.num_vfs)
        } else {
            0
        }
    }

    fn enabled(&self, k: usize) -> bool {
        k < self.live()
    }

    /// The enabled VFs.
    fn live_vfs(&mut self) -> impl Iterator<Item = &mut VirtFn> {
        let live = self.live();
        self.vfs.iter_mut().take(live)
    }

    fn read_dword(&self, offset: u16) -> u32 {
        match offset {
            SRIOV_CAP => ext_cap_header(bindings::PCI_EXT_CAP_ID_SRIOV, 0),
            SRIOV_CTRL => u32::from(self.ctrl),
            // InitialVFs = TotalVFs: there is no VF Migration.
            SRIOV_VFS => self.total() | (self.total() << byte_shift(bindings::PCI_SRIOV_TOTAL_VF)),
            SRIOV_NUM_VF => u32::from(self.num_vfs),
            SRIOV_VF_OFFSET => 1 | (1 << byte_shift(bindings::PCI_SRIOV_VF_STRIDE)),
            SRIOV_VF_DID => VF_DEVICE_ID << byte_shift(bindings::PCI_SRIOV_VF_DID),
            SRIOV_SUP_PGSIZE => SUPPORTED_PAGE_SIZES,
            SRIOV_SYS_PGSIZE => self.sys_pgsize,
            SRIOV_BAR0 => {
                (self.bar as u32 & !(BAR0_SIZE as u32 - 1)) | bindings::PCI_BASE_ADDRESS_MEM_TYPE_64
            }
            SRIOV_BAR1 => (self.bar >> 32) as u32,
            _ => 0,
        }
    }

    fn write_dword(&mut self, offset: u16, merge: impl Fn(u32) -> u32) {
        match offset {
            SRIOV_CTRL => self.set_ctrl(merge(u32::from(self.ctrl)) as u16 & SRIOV_CTRL_WRITABLE),
            // NumVFs may change only while VF Enable is clear.
            SRIOV_NUM_VF if !self.vf_enable() => {
                let num = merge(u32::from(self.num_vfs)) & 0xffff;
                // CAST: clamped to TotalVFs, at most `MAX_VFS`.
                self.num_vfs = num.min(self.total()) as u16;
            }
            SRIOV_SYS_PGSIZE => self.sys_pgsize = merge(self.sys_pgsize) & SUPPORTED_PAGE_SIZES,
            SRIOV_BAR0 => {
                let lo = merge(self.bar as u32) & !(BAR0_SIZE as u32 - 1);
                self.set_bar((self.bar & !0xffff_ffff) | u64::from(lo));
            }
            SRIOV_BAR1 => {
                let hi = merge((self.bar >> 32) as u32);
                self.set_bar((self.bar & 0xffff_ffff) | (u64::from(hi) << 32));
            }
            _ => {}
        }
    }

    fn set_ctrl(&mut self, ctrl: u16) {
        let cleared = u32::from(self.ctrl & !ctrl);
        self.ctrl = ctrl;
        if cleared & bindings::PCI_SRIOV_CTRL_VFE != 0 {
            // The VFs cease to exist; enabled again they start afresh.
            let bar = self.bar;
            for (k, vf) in self.vfs.iter_mut().enumerate() {
                *vf = VirtFn::new(vf.rid);
                vf.tdi.set_bar(vf_bar(bar, k), None);
            }
        } else if cleared & bindings::PCI_SRIOV_CTRL_MSE != 0 {
            // Disabling the VFs' memory decoding is a configuration change for each.
            for vf in self.live_vfs() {
                vf.tdi.responder.config_changed();
            }
        }
    }

    /// Reprograms VF BAR0; a change is a configuration change for every VF.
    fn set_bar(&mut self, bar: u64) {
        if bar == self.bar {
            return;
        }
        self.bar = bar;
        for (k, vf) in self.vfs.iter_mut().enumerate() {
            vf.tdi.set_bar(vf_bar(bar, k), None);
        }
    }
}

/// Returns the address of VF `k`'s BAR0 given the PF's VF BAR0.
fn vf_bar(bar: u64, k: usize) -> u64 {
    // CAST: `k < MAX_VFS`.
    bar + k as u64 * BAR0_SIZE
}

/// Returns the requester ID of VF `k` of the PF at `devfn` (First VF Offset 1, VF Stride 1).
fn vf_rid(devfn: u8, k: usize) -> u16 {
    // CAST: `k < MAX_VFS`, so the VF stays in the PF's slot.
    (u16::from(BUSNR) << 8) | (u16::from(devfn) + 1 + k as u16)
}

/// A function of an endpoint: the physical function or virtual function `k`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Func {
    Pf,
    Vf(usize),
}

/// One emulated endpoint: a physical function, with virtual functions if it has SR-IOV.
struct Endpoint {
    present: bool,
    multifunction: bool,
    command: u16,
    cache_line: u8,
    int_line: u8,
    /// BAR0 address bits (BAR0 low | BAR1 << 32).
    bar: u64,
    /// BAR2 address bits (BAR2 low | BAR3 << 32), if the function has BAR2.
    bar2: Option<u64>,
    devctl: u16,
    devctl2: u16,
    ide_ctl: u32,
    ide_sel_ctl: u32,
    ide_rid: [u32; 2],
    doe: Doe,
    spdm: SpdmMailbox,
    faults: DeviceFaults,
    tdi: Tdi,
    sriov: Option<Sriov>,
    /// Start nonces for LOCK_INTERFACE_REQUEST, shared by the interfaces of the endpoint.
    nonces: NoncePool,
}

impl Endpoint {
    /// Returns a function at `devfn` with `vfs` virtual functions. Process context only: it
    /// fills the nonce pool.
    fn new(devfn: u8, multifunction: bool, vfs: usize, bar2: bool) -> Result<Self> {
        let requester_id = (u16::from(BUSNR) << 8) | u16::from(devfn);
        Ok(Self {
            present: true,
            multifunction,
            command: 0,
            cache_line: 0,
            int_line: 0,
            bar: 0,
            bar2: bar2.then_some(0),
            devctl: 0,
            devctl2: 0,
            ide_ctl: 0,
            ide_sel_ctl: 0,
            ide_rid: [0; 2],
            doe: Doe::new(),
            spdm: SpdmMailbox::new(),
            faults: DeviceFaults::default(),
            tdi: Tdi::new(requester_id),
            sriov: if vfs > 0 {
                Some(Sriov::new(devfn, vfs)?)
            } else {
                None
            },
            nonces: NoncePool::new(),
        })
    }

    /// The TDISP interface of `func`, whether or not a VF is enabled (for debugfs).
    fn tdi_any(&self, func: Func) -> Option<&Tdi> {
        match func {
            Func::Pf => Some(&self.tdi),
            Func::Vf(k) => self.sriov.as_ref()?.vfs.get(k).map(|vf| &vf.tdi),
        }
    }

    /// Like [`Endpoint::tdi_any`], for changing it.
    fn tdi_any_mut(&mut self, func: Func) -> Option<&mut Tdi> {
        match func {
            Func::Pf => Some(&mut self.tdi),
            Func::Vf(k) => self.sriov.as_mut()?.vfs.get_mut(k).map(|vf| &mut vf.tdi),
        }
    }

    /// Reads a configuration dword of `func`; `None` if the function does not exist.
    fn read(&self, func: Func, offset: u16) -> Option<u32> {
        if !self.present {
            return None;
        }
        match func {
            Func::Pf => Some(self.read_dword(offset)),
            Func::Vf(k) => Some(self.sriov.as_ref()?.vf(k)?.read_dword(offset)),
        }
    }

    /// Writes the bytes of `value` selected by `mask` into the dword at `offset` of `func`;
    /// `false` if the function does not exist.
    fn write(&mut self, func: Func, offset: u16, mask: u32, value: u32) -> bool {
        if !self.present {
            return false;
        }
        match func {
            Func::Pf => self.write_dword(offset, mask, value),
            Func::Vf(k) => {
                let Some(vf) = self.sriov.as_mut().and_then(|s| s.vf_mut(k)) else {
                    return false;
                };
                vf.write_dword(offset, |old| (old & !mask) | (value & mask));
            }
        }
        true
    }

    fn read_dword(&self, offset: u16) -> u32 {
        match offset {
            VENDOR_DWORD | SUBSYSTEM_DWORD => VENDOR_ID | (DEVICE_ID << 16),
            COMMAND_DWORD => {
                u32::from(self.command)
                    | (bindings::PCI_STATUS_CAP_LIST << byte_shift(bindings::PCI_STATUS))
            }
            CLASS_DWORD => (CLASS << 8) | REVISION,
            CACHE_LINE_DWORD => {
                let header_type = if self.multifunction {
                    bindings::PCI_HEADER_TYPE_MFD
                } else {
                    0
                };
                u32::from(self.cache_line) | (header_type << byte_shift(bindings::PCI_HEADER_TYPE))
            }
            BAR0_DWORD => {
                (self.bar as u32 & !(BAR0_SIZE as u32 - 1)) | bindings::PCI_BASE_ADDRESS_MEM_TYPE_64
            }
            BAR1_DWORD => (self.bar >> 32) as u32,
            BAR2_DWORD => self.bar2.map_or(0, |bar| {
                (bar as u32 & !(BAR2_SIZE as u32 - 1)) | bindings::PCI_BASE_ADDRESS_MEM_TYPE_64
            }),
            BAR3_DWORD => self.bar2.map_or(0, |bar| (bar >> 32) as u32),
            CAP_LIST_DWORD => u32::from(PCIE_CAP),
            INTERRUPT_DWORD => u32::from(self.int_line),
            PCIE_CAP => {
                bindings::PCI_CAP_ID_EXP | (PCIE_FLAGS << byte_shift(bindings::PCI_EXP_FLAGS))
            }
            PCIE_DEVCAP => bindings::PCI_EXP_DEVCAP_TEE,
            PCIE_DEVCTL => u32::from(self.devctl),
            PCIE_DEVCTL2 => u32::from(self.devctl2),
            DOE_CAP => ext_cap_header(bindings::PCI_EXT_CAP_ID_DOE, IDE_CAP),
            DOE_CAPABILITIES => 0,
            DOE_STATUS => self.doe.status(),
            DOE_READ => self.doe.peek(),
            IDE_CAP => {
                let next = if self.sriov.is_some() { SRIOV_CAP } else { 0 };
                ext_cap_header(bindings::PCI_EXT_CAP_ID_IDE, next)
            }
            IDE_CAPABILITIES => IDE_CAP_VALUE,
            IDE_CTL => self.ide_ctl,
            IDE_SEL_CTL => self.ide_sel_ctl,
            IDE_SEL_RID_1 => self.ide_rid[0],
            IDE_SEL_RID_2 => self.ide_rid[1],
            SRIOV_CAP..=SRIOV_LAST => self.sriov.as_ref().map_or(0, |s| s.read_dword(offset)),
            // Everything else, including the DOE control and write mailbox registers, reads 0.
            _ => 0,
        }
    }

    /// Writes the bytes of `value` selected by `mask` into the dword at `offset`.
    fn write_dword(&mut self, offset: u16, mask: u32, value: u32) {
        let merge = |old: u32| (old & !mask) | (value & mask);
        let full = mask == u32::MAX;
        match offset {
            COMMAND_DWORD => {
                let value = merge(u32::from(self.command));
                self.tdi
                    .write_command(&mut self.command, value, COMMAND_WRITABLE);
            }
            CACHE_LINE_DWORD => self.cache_line = merge(u32::from(self.cache_line)) as u8,
            BAR0_DWORD => {
                let lo = merge(self.bar as u32) & !(BAR0_SIZE as u32 - 1);
                self.set_bar((self.bar & !0xffff_ffff) | u64::from(lo));
            }
            BAR1_DWORD => {
                let hi = merge((self.bar >> 32) as u32);
                self.set_bar((self.bar & 0xffff_ffff) | (u64::from(hi) << 32));
            }
            BAR2_DWORD => {
                if let Some(bar) = self.bar2 {
                    let lo = merge(bar as u32) & !(BAR2_SIZE as u32 - 1);
                    self.set_bar2((bar & !0xffff_ffff) | u64::from(lo));
                }
            }
            BAR3_DWORD => {
                if let Some(bar) = self.bar2 {
                    let hi = merge((bar >> 32) as u32);
                    self.set_bar2((bar & 0xffff_ffff) | (u64::from(hi) << 32));
                }
            }
            INTERRUPT_DWORD => self.int_line = merge(u32::from(self.int_line)) as u8,
            PCIE_DEVCTL => self.devctl = merge(u32::from(self.devctl)) as u16,
            PCIE_DEVCTL2 => self.devctl2 = merge(u32::from(self.devctl2)) as u16,
            // The DOE registers only take whole dwords.
            DOE_CTRL if full => self.doe_control(value),
            DOE_WRITE if full => self.doe.push(value),
            DOE_READ if full => self.doe.advance(),
            IDE_CTL => self.ide_ctl = merge(self.ide_ctl),
            IDE_SEL_CTL => self.ide_sel_ctl = merge(self.ide_sel_ctl),
            IDE_SEL_RID_1 => self.ide_rid[0] = merge(self.ide_rid[0]),
            IDE_SEL_RID_2 => self.ide_rid[1] = merge(self.ide_rid[1]),
            // The PF's own interface does not lock its SR-IOV capability: enabling VFs is
            // what a PF driver does after the PF was accepted.
            SRIOV_CAP..=SRIOV_LAST => {
                if let Some(sriov) = self.sriov.as_mut() {
                    sriov.write_dword(offset, merge);
                }
            }
            // Read-only or unimplemented.
            _ => {}
        }
    }

    /// Reprograms BAR0; a change is a configuration change for the TDISP responder.
    fn set_bar(&mut self, bar: u64) {
        if bar == self.bar {
            return;
        }
        self.bar = bar;
        self.tdi.set_bar(bar, self.bar2);
    }

    /// Reprograms BAR2 (of a function that has it); a change is a configuration change.
    fn set_bar2(&mut self, bar: u64) {
        if self.bar2 == Some(bar) {
            return;
        }
        self.bar2 = Some(bar);
        self.tdi.set_bar(self.bar, self.bar2);
    }

    fn doe_control(&mut self, value: u32) {
        if value & bindings::PCI_DOE_CTRL_ABORT != 0 {
            self.doe.abort();
            if core::mem::take(&mut self.spdm.pending) {
                self.spdm.epoch = self.spdm.epoch.wrapping_add(1);
            }
            // A stuck mailbox becomes stuck again on the next request.
            return;
        }
        if value & bindings::PCI_DOE_CTRL_GO != 0 {
            self.doe_go();
        }
    }

    /// GO: process the request in the write mailbox synchronously.
    fn doe_go(&mut self) {
        if self.faults.doe_busy {
            self.doe.busy = true;
            self.doe.wlen = 0;
            return;
        }
        if self.doe.busy || self.doe.error || self.doe.ready {
            self.doe.error = true;
            self.doe.wlen = 0;
            return;
        }
        let len = core::mem::take(&mut self.doe.wlen);
        if self.faults.doe_timeout {
            // Accepted, never answered: the requester times out and aborts.
            return;
        }
        if !self.doe_process(len) {
            self.doe.error = true;
        }
    }

    fn doe_process(&mut self, len: usize) -> bool {
        let Some(req) = self.doe.wbuf.get(..len) else {
            return false;
        };
        let dword = |i: usize| {
            req.get(i * 4..i * 4 + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let (Some(dw0), Some(dw1)) = (dword(0), dword(1)) else {
            return false;
        };
        let Ok(hdr) = tdisp::DoeHeader::decode(dw0, dw1) else {
            return false;
        };
        if usize::try_from(hdr.length_dw)
            .ok()
            .and_then(|dw| dw.checked_mul(4))
            != Some(len)
            || hdr.vendor != tdisp::VENDOR_ID_PCI_SIG
        {
            return false;
        }
        match hdr.object_type {
            tdisp::DOE_TYPE_DISCOVERY => {
                let (Some(request), 12) = (dword(2), len) else {
                    return false;
                };
                let answer = tdisp::doe_discovery_answer(tdisp::doe_discovery_index(request));
                self.doe.rbuf[8..12].copy_from_slice(&answer.to_le_bytes());
                self.doe.respond(tdisp::DOE_TYPE_DISCOVERY, 4)
            }
            tdisp::DOE_TYPE_CMA => {
                let mut request = [0u8; DOE_WBUF];
                let Some(payload) = request.get_mut(..len - 8) else {
                    return false;
                };
                payload.copy_from_slice(&self.doe.wbuf[8..len]);
                // Everything but TDISP after negotiation is SPDM, for the work item; so is
                // VENDOR_DEFINED before VCA, which the SPDM responder refuses.
                let vendor = payload.get(1) == Some(&(spdm::Code::VendorDefinedRequest as u8));
                if !(vendor && (self.spdm.negotiated || !self.spdm.required)) {
                    return self.spdm_queue(len - 8);
                }
                let decoded = tdisp::decode_request(payload);
                // The PF is the DSM of its VFs: a request for the interface of an enabled VF
                // goes to that VF, anything else to the PF's own interface, which answers
                // INVALID_INTERFACE for an unknown interface ID.
                let tdi = match (&decoded, self.sriov.as_mut()) {
                    (Ok((id, _)), Some(sriov)) => sriov
                        .live_vfs()
                        .map(|vf| &mut vf.tdi)
                        .find(|tdi| tdisp::InterfaceId::new(tdi.responder.function_id()) == *id),
                    _ => None,
                }
                .unwrap_or(&mut self.tdi);
                let is_start = matches!(decoded, Ok((_, tdisp::Request::StartInterface { .. })));
                if is_start {
                    tdi.inject_bad_nonce(payload);
                }
                // The responder draws the start nonce of a successful LOCK_INTERFACE_REQUEST
                // from the pool. An empty pool gives it an all-zero nonce, which it answers
                // with INSUFFICIENT_ENTROPY.
                let nonces = &mut self.nonces;
                let no_entropy = self.faults.no_entropy;
                let mut rng = |buf: &mut [u8]| {
                    buf.fill(0);
                    if let Some(nonce) = nonces.take().filter(|_| !no_entropy) {
                        for (dst, src) in buf.iter_mut().zip(nonce.iter()) {
                            *dst = *src;
                        }
                    }
                };
                let n = if tdi.spdm_refuses {
                    // As an SPDM responder that does not take VENDOR_DEFINED requests (yet):
                    // the request never reaches the TDISP layer.
                    tdi.spdm_refuses = false;
                    tdisp::encode_spdm_error(
                        tdisp::SPDM_VERSION,
                        tdisp::spdm_error::UNSUPPORTED_REQUEST,
                        tdisp::SPDM_VENDOR_DEFINED_REQUEST,
                        &mut self.doe.rbuf[8..],
                    )
                    .unwrap_or(0)
                } else {
                    tdi.responder
                        .handle(payload, &mut self.doe.rbuf[8..], &mut rng)
                };
                // With `error_after_start` armed, a START that succeeded is followed at once
                // by an error of the interface (RUN -> ERROR); the fault is then spent.
                if is_start && tdi.error_after_start && tdi.responder.state() == tdisp::State::Run {
                    tdi.responder.force_error();
                    tdi.error_after_start = false;
                }
                n != 0 && self.doe.respond(tdisp::DOE_TYPE_CMA, n)
            }
            _ => false,
        }
    }
}

impl Endpoint {
    /// Hands the CMA request of `len` bytes in the write mailbox to the work item; the
    /// mailbox is BUSY until it answers.
    fn spdm_queue(&mut self, len: usize) -> bool {
        let (Some(dst), Some(src)) = (self.spdm.req.get_mut(..len), self.doe.wbuf.get(8..8 + len))
        else {
            return false;
        };
        dst.copy_from_slice(src);
        self.spdm.len = len;
        self.spdm.pending = true;
        self.doe.busy = true;
        true
    }

    /// Delivers the work item's answer `rsp` (`None`: no answer, the mailbox errs) to the
    /// request of epoch `epoch`, unless it was aborted meanwhile.
    fn spdm_answer(&mut self, epoch: u32, rsp: Option<(&[u8], bool)>) {
        if !self.spdm.pending || self.spdm.epoch != epoch {
            return;
        }
        self.spdm.pending = false;
        self.doe.busy = false;
        let delivered = rsp.is_some_and(|(rsp, negotiated)| {
            self.spdm.negotiated = negotiated;
            match self.doe.rbuf.get_mut(8..8 + rsp.len()) {
                Some(dst) => {
                    dst.copy_from_slice(rsp);
                    self.doe.respond(tdisp::DOE_TYPE_CMA, rsp.len())
                }
                None => false,
            }
        });
        if !delivered {
            self.doe.error = true;
        }
    }
}

impl Tdi {
    /// With `bad_nonce` armed, corrupts the nonce of a START_INTERFACE `request` the
    /// responder would otherwise check, so that it answers INVALID_NONCE; the fault is then
    /// spent.
    fn inject_bad_nonce(&mut self, request: &mut [u8]) {
        if !self.bad_nonce || self.responder.state() != tdisp::State::ConfigLocked {
            return;
        }
        if let Some(byte) = request.get_mut(tdisp::TDISP_OVERHEAD) {
            *byte ^= 0xff;
            self.bad_nonce = false;
        }
    }
}

/// The endpoints of the bus: `endpoints[i]` is at slot `i % 32`, function `i / 32`, its VFs (if
/// any) at functions 1 and up of its slot.
#[pin_data]
struct Emulator {
    endpoints: KVec<Pin<KBox<RawSpinLockIrq<Endpoint>>>>,
    /// The SPDM responders of the endpoints, by index. Taken in process context only; never
    /// while holding an endpoint's lock.
    spdm: KVec<Pin<KBox<Mutex<SpdmEndpoint>>>>,
    /// The device the endpoints load their SPDM identities for.
    dev: ARef<Device>,
    /// Virtual functions per endpoint.
    vfs: usize,
    /// Refills the nonce pools and answers SPDM requests, in process context.
    #[pin]
    refill: Work<Emulator>,
}

impl_has_work! {
    impl HasWork<Self> for Emulator { self.refill }
}

impl WorkItem for Emulator {
    type Pointer = Arc<Emulator>;

    fn run(this: Arc<Emulator>) {
        for (ep, spdm) in this.endpoints.iter().zip(this.spdm.iter()) {
            // Draw outside the endpoint lock; a nonce drawn for a pool that filled up
            // meanwhile is dropped.
            while !ep.lock().nonces.is_full() {
                let nonce = draw_nonce();
                ep.lock().nonces.put(nonce);
            }
            this.serve_spdm(ep, spdm);
        }
    }
}

impl Emulator {
    /// Answers the SPDM request `ep` has waiting, if any, with its responder `spdm`.
    fn serve_spdm(&self, ep: &RawSpinLockIrq<Endpoint>, spdm: &Mutex<SpdmEndpoint>) {
        let (mut req, len, epoch, faults) = {
            let ep = ep.lock();
            if !ep.spdm.pending {
                return;
            }
            (ep.spdm.req, ep.spdm.len, ep.spdm.epoch, ep.spdm.faults)
        };
        let Some(req) = req.get_mut(..len) else {
            return;
        };
        let mut spdm = spdm.lock();
        let mut rng = |buf: &mut [u8]| fill_random(buf);
        let rsp = spdm.handle(&self.dev, req, faults, &mut rng);
        ep.lock().spdm_answer(epoch, rsp);
    }

    /// Returns `count` endpoints with `vfs` VFs each, loading SPDM identities for `dev`, that
    /// take TDISP only after SPDM negotiation if `require_spdm`. Process context only: it fills
    /// their nonce pools.
    fn new(
        dev: &Device,
        count: usize,
        vfs: usize,
        bar2: bool,
        require_spdm: bool,
    ) -> Result<Arc<Self>> {
        let mut endpoints = KVec::with_capacity(count, GFP_KERNEL)?;
        let mut spdm = KVec::with_capacity(count, GFP_KERNEL)?;
        for index in 0..count {
            spdm.push(
                KBox::pin_init(new_mutex!(SpdmEndpoint::new(index)), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
            let devfn = devfn_of(index);
            // Function 0 of a slot announces further functions.
            let multifunction = index % SLOTS + SLOTS < count;
            let mut ep = Endpoint::new(devfn, multifunction, vfs, bar2)?;
            ep.spdm.required = require_spdm;
            endpoints.push(
                KBox::pin_init(new_raw_spinlock_irq!(ep), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
        }
        Arc::pin_init(
            pin_init!(Self {
                endpoints,
                spdm,
                dev: dev.into(),
                vfs,
                refill <- new_work!("devsec_bus::Emulator::refill"),
            }),
            GFP_KERNEL,
        )
    }

    /// Returns the endpoint that implements function `devfn` of `bus`, and which of its
    /// functions that is.
    fn function(&self, bus: u8, devfn: u8) -> Option<(&RawSpinLockIrq<Endpoint>, Func)> {
        if bus != BUSNR {
            return None;
        }
        let (slot, function) = (usize::from(devfn >> 3), usize::from(devfn & 7));
        let (index, func) = match function {
            0 => (slot, Func::Pf),
            // With SR-IOV there are at most `SLOTS` endpoints, one per slot.
            _ if self.vfs > 0 => (slot, Func::Vf(function - 1)),
            _ => (function * SLOTS + slot, Func::Pf),
        };
        self.endpoints.get(index).map(|ep| (&**ep, func))
    }
}

/// Returns the devfn of endpoint `index`.
fn devfn_of(index: usize) -> u8 {
    // `index < 256`, so slot < 32 and function < 8.
    (((index % SLOTS) << 3) | (index / SLOTS)) as u8
}

/// The configuration space of the host bridge.
struct Bus(Arc<Emulator>);

impl ConfigSpace for Bus {
    fn read(&self, bus: u8, devfn: u8, offset: u16, _size: AccessSize) -> Result<u32, ConfigError> {
        let (ep, func) = self
            .0
            .function(bus, devfn)
            .ok_or(ConfigError::DeviceNotFound)?;
        let dword = ep
            .lock()
            .read(func, offset & !3)
            .ok_or(ConfigError::DeviceNotFound)?;
        Ok(dword >> (8 * u32::from(offset & 3)))
    }

    fn write(
        &self,
        bus: u8,
        devfn: u8,
        offset: u16,
        size: AccessSize,
        value: u32,
    ) -> Result<(), ConfigError> {
        let (ep, func) = self
            .0
            .function(bus, devfn)
            .ok_or(ConfigError::DeviceNotFound)?;
        let shift = 8 * u32::from(offset & 3);
        let refill = {
            let mut ep = ep.lock();
            if !ep.write(func, offset & !3, size.mask() << shift, value << shift) {
                return Err(ConfigError::DeviceNotFound);
            }
            !ep.nonces.is_full() || ep.spdm.pending
        };
        if refill {
            // Queueing work is fine in atomic context. Fails only if the work is queued
            // already; the clone is then dropped, and it is not the last reference.
            let _ = workqueue::system().enqueue(self.0.clone());
        }
        Ok(())
    }
}

/// Owner of the emulator for the module: waits for the refill work when dropped.
///
/// Dropped after the host bridge, when no configuration write can queue the work anymore, so
/// that the work is not running (and holds no reference) when the module is unloaded.
struct Pools(Arc<Emulator>);

impl Drop for Pools {
    fn drop(&mut self) {
        // SAFETY: `refill` is an initialised work item in the live `Arc` allocation that
        // `self.0` keeps alive; `flush_work()` only waits for it (we are in process context).
        unsafe { bindings::flush_work(Work::raw_get(&self.0.refill)) };
    }
}

/// What the debugfs files of one function operate on.
struct EndpointFiles {
    emulator: Arc<Emulator>,
    /// PCI domain of the host bridge.
    domain: u32,
    index: usize,
    func: Func,
}

impl EndpointFiles {
    fn endpoint(&self) -> &RawSpinLockIrq<Endpoint> {
        &self.emulator.endpoints[self.index]
    }
}

/// Interface report layouts of BAR0 (16 KiB, four pages) the `report_layout` file offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// One private range: the whole BAR (the default).
    Bar,
    /// Pages 0-1 private, page 2 the MSI-X table, page 3 the MSI-X PBA.
    Msix,
    /// Page 0 NON_TEE, pages 1-3 private.
    NonTee,
    /// Four private one-page ranges.
    Multi,
    /// One private range of pages 1-2: it starts inside the BAR, pages 0 and 3 are not
    /// reported.
    Inside,
    /// The whole BAR as an UPDATABLE range.
    Updatable,
}

/// Shorthand for a segment of BAR0.
const fn seg(first_page: u64, pages: u32, attributes: u16, range_id: u16) -> tdisp::Segment {
    tdisp::Segment {
        bar: 0,
        first_page,
        pages,
        attributes,
        range_id,
    }
}

impl Layout {
    const ALL: [Self; 6] = [
        Self::Bar,
        Self::Msix,
        Self::NonTee,
        Self::Multi,
        Self::Inside,
        Self::Updatable,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Bar => "bar",
            Self::Msix => "msix",
            Self::NonTee => "non_tee",
            Self::Multi => "multi",
            Self::Inside => "inside",
            Self::Updatable => "updatable",
        }
    }

    /// The segments of the layout; empty for the responder's default (one range per BAR).
    fn segments(self) -> &'static [tdisp::Segment] {
        use tdisp::range_attr::{
            MSIX_PBA,
            MSIX_TABLE,
            NON_TEE,
            UPDATABLE, //
        };
        const MSIX: [tdisp::Segment; 3] = [
            seg(0, 2, 0, 0),
            seg(2, 1, MSIX_TABLE, 1),
            seg(3, 1, MSIX_PBA, 2),
        ];
        const NON_TEE_FIRST: [tdisp::Segment; 2] = [seg(0, 1, NON_TEE, 0), seg(1, 3, 0, 1)];
        const MULTI: [tdisp::Segment; 4] = [
            seg(0, 1, 0, 0),
            seg(1, 1, 0, 1),
            seg(2, 1, 0, 2),
            seg(3, 1, 0, 3),
        ];
        const INSIDE: [tdisp::Segment; 1] = [seg(1, 2, 0, 0)];
        const UPDATABLE_BAR: [tdisp::Segment; 1] = [seg(0, 0, UPDATABLE, 0)];
        match self {
            Self::Bar => &[],
            Self::Msix => &MSIX,
            Self::NonTee => &NON_TEE_FIRST,
            Self::Multi => &MULTI,
            Self::Inside => &INSIDE,
            Self::Updatable => &UPDATABLE_BAR,
        }
    }
}

fn layout_show(files: &EndpointFiles, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let layout = files
        .endpoint()
        .lock()
        .tdi_any(files.func)
        .map(|tdi| tdi.layout);
    writeln!(f, "{}", layout.map_or("none", Layout::name))
}

fn layout_store(files: &EndpointFiles, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let word = read_word(reader, &mut buf)?;
    let Some(layout) = Layout::ALL.into_iter().find(|l| l.name() == word) else {
        pr_err!("report_layout: unknown layout '{}'\n", word);
        return Err(EINVAL);
    };
    let mut ep = files.endpoint().lock();
    let tdi = ep.tdi_any_mut(files.func).ok_or(ENODEV)?;
    // The layouts describe BAR0; a BAR2 is reported whole after them.
    let mut segments = [tdisp::Segment::default(); tdisp::MAX_RANGES];
    let mut count = 0;
    let has_bar2 = tdi.responder.bars().iter().any(|bar| bar.index == 2);
    let bar2 = tdisp::Segment {
        bar: 2,
        range_id: 2,
        ..tdisp::Segment::default()
    };
    let extra = if has_bar2 && layout != Layout::Bar {
        core::slice::from_ref(&bar2)
    } else {
        &[]
    };
    for (dst, src) in segments
        .iter_mut()
        .zip(Iterator::chain(layout.segments().iter(), extra))
    {
        *dst = *src;
        count += 1;
    }
    // At most five segments: always within the responder's limit.
    tdi.responder
        .set_segments(segments.get(..count).unwrap_or(&[]))
        .map_err(|_| EINVAL)?;
    tdi.layout = layout;
    Ok(())
}

/// Reads a short, trimmed word written to a debugfs file.
fn read_word<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8; 32]) -> Result<&'a str> {
    let len = reader.len();
    let dst = buf.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(dst)?;
    Ok(core::str::from_utf8(dst).map_err(|_| EINVAL)?.trim())
}

fn state_show(files: &EndpointFiles, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = files
        .endpoint()
        .lock()
        .tdi_any(files.func)
        .map(|tdi| tdi.responder.state());
    writeln!(f, "{}", state.map_or("none", tdisp::State::name))
}

fn spdm_state_show(files: &EndpointFiles, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let spdm = files
        .emulator
        .spdm
        .get(files.index)
        .map(|spdm| spdm.lock().state_name());
    writeln!(f, "{}", spdm.unwrap_or("none"))
}

/// Fault names accepted by the `fault` file, in the order they are listed.
const FAULT_NAMES: [&str; 11] = [
    "report_range",
    "report_count",
    "report_truncated",
    "report_changed",
    "report_missing",
    "bad_nonce",
    "error_after_start",
    "spdm_refuses",
    "doe_busy",
    "doe_timeout",
    "no_entropy",
];

fn fault_show(files: &EndpointFiles, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (active, spdm) = {
        let ep = files.endpoint().lock();
        let device = ep.faults;
        let spdm = ep.spdm.faults.flags();
        let active = ep.tdi_any(files.func).map(|tdi| {
            let corruption = tdi.responder.report_corruption();
            [
                corruption == tdisp::ReportCorruption::RangeMismatch,
                corruption == tdisp::ReportCorruption::RangeCount,
                corruption == tdisp::ReportCorruption::Truncated,
                corruption == tdisp::ReportCorruption::Changed,
                corruption == tdisp::ReportCorruption::Missing,
                tdi.bad_nonce,
                tdi.error_after_start,
                tdi.spdm_refuses,
                device.doe_busy,
                device.doe_timeout,
                device.no_entropy,
            ]
        });
        (active, spdm)
    };
    let mut any = false;
    let tdi_faults = FAULT_NAMES.iter().zip(active.unwrap_or_default());
    let spdm_faults = SPDM_FAULT_NAMES.iter().zip(spdm);
    for (name, _) in Iterator::chain(tdi_faults, spdm_faults).filter(|(_, on)| *on) {
        write!(f, "{}{}", if any { " " } else { "" }, name)?;
        any = true;
    }
    writeln!(f, "{}", if any { "" } else { "none" })
}

fn fault_store(files: &EndpointFiles, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let word = read_word(reader, &mut buf)?;
    let mut guard = files.endpoint().lock();
    let ep = &mut *guard;
    // The device faults of a VF act on its PF, whose mailbox carries its TDISP messages and
    // which draws its nonces.
    match word {
        "doe_busy" => {
            ep.faults.doe_busy = true;
            ep.doe.busy = true;
            return Ok(());
        }
        "doe_timeout" => {
            ep.faults.doe_timeout = true;
            return Ok(());
        }
        "no_entropy" => {
            ep.faults.no_entropy = true;
            return Ok(());
        }
        "none" => {
            // A mailbox held busy by the fault is released too, unless an SPDM request
            // keeps it busy.
            if ep.faults.doe_busy && !ep.spdm.pending {
                ep.doe.busy = false;
            }
            ep.faults = DeviceFaults::default();
            ep.spdm.faults = SpdmFaults::NONE;
        }
        word if ep.spdm.faults.arm(word) => return Ok(()),
        _ => {}
    }
    let tdi = ep.tdi_any_mut(files.func).ok_or(ENODEV)?;
    let corruption = match word {
        "report_range" => tdisp::ReportCorruption::RangeMismatch,
        "report_count" => tdisp::ReportCorruption::RangeCount,
        "report_truncated" => tdisp::ReportCorruption::Truncated,
        "report_changed" => tdisp::ReportCorruption::Changed,
        "report_missing" => tdisp::ReportCorruption::Missing,
        _ => tdi.responder.report_corruption(),
    };
    tdi.responder.set_report_corruption(corruption);
    match word {
        "error" => tdi.responder.force_error(),
        "report_range" | "report_count" | "report_truncated" | "report_changed"
        | "report_missing" => {}
        "bad_nonce" => tdi.bad_nonce = true,
        "error_after_start" => tdi.error_after_start = true,
        "spdm_refuses" => tdi.spdm_refuses = true,
        "none" => {
            tdi.bad_nonce = false;
            tdi.error_after_start = false;
            tdi.spdm_refuses = false;
            tdi.responder
                .set_report_corruption(tdisp::ReportCorruption::None);
        }
        _ => {
            drop(guard);
            pr_err!("fault: unknown fault '{}'\n", word);
            return Err(EINVAL);
        }
    }
    Ok(())
}

fn remove_store(files: &EndpointFiles, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let word = read_word(reader, &mut buf)?;
    if !matches!(word, "1" | "y" | "Y") {
        pr_err!("remove: write 1 to remove the device, got '{}'\n", word);
        return Err(EINVAL);
    }
    {
        let mut ep = files.endpoint().lock();
        if !ep.present {
            return Err(ENODEV);
        }
        // From now on the function (with its VFs) answers configuration cycles like an empty
        // slot.
        ep.present = false;
    }
    host::remove_function(files.domain, BUSNR, devfn_of(files.index))
}

/// Creates the debugfs directory of function `func` of endpoint `index`.
fn function_files(
    root: &Dir,
    data: EndpointFiles,
    devfn: u8,
) -> Result<Pin<KBox<Scope<EndpointFiles>>>> {
    let name = CString::try_from_fmt(fmt!(
        "{:04x}:{:02x}:{:02x}.{}",
        data.domain,
        BUSNR,
        devfn >> 3,
        devfn & 7
    ))?;
    let scope = root.scope(data, &name, |files, dir| {
        dir.read_callback_file(c"tdisp_state", files, &state_show);
        dir.read_write_callback_file(c"fault", files, &fault_show, &fault_store);
        dir.read_write_callback_file(c"report_layout", files, &layout_show, &layout_store);
        // Surprise removal is of a whole endpoint; a VF goes away with its PF.
        if files.func == Func::Pf {
            dir.write_only_callback_file(c"remove", files, &remove_store);
            dir.read_callback_file(c"spdm_state", files, &spdm_state_show);
        }
    });
    KBox::pin_init(scope, GFP_KERNEL)
}

struct DevsecBus {
    domain: u32,
    // Dropped in this order: the files first (they may remove functions of the bus), then the
    // bridge, which removes the bus and releases the window, then the emulator, after its
    // refill work, and last the parent of the bridge.
    _files: KVec<Pin<KBox<Scope<EndpointFiles>>>>,
    _spdm_files: Pin<KBox<Scope<()>>>,
    _root: Dir,
    _bridge: Devres<HostBridge<Bus>>,
    _pools: Pools,
    _parent: faux::Registration,
}

impl kernel::Module for DevsecBus {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let count = usize::try_from(module_parameters::endpoints.value()).map_err(|_| EINVAL)?;
        if !(1..=MAX_ENDPOINTS).contains(&count) {
            pr_err!(
                "endpoints={} is out of range 1..={}\n",
                count,
                MAX_ENDPOINTS
            );
            return Err(EINVAL);
        }
        let vfs = usize::try_from(module_parameters::vfs.value()).map_err(|_| EINVAL)?;
        if vfs > MAX_VFS || (vfs > 0 && count > SLOTS) {
            pr_err!(
                "vfs={} needs vfs <= {} and endpoints <= {}\n",
                vfs,
                MAX_VFS,
                SLOTS
            );
            return Err(EINVAL);
        }

        let parent = faux::Registration::new(c"devsec_bus", None)?;
        let dev = parent.as_ref().as_ref();
        let window = MemWindow::claim(
            c"devsec_bus",
            WINDOW_SIZE,
            WINDOW_SIZE,
            WINDOW_MIN,
            u64::MAX,
        )
        .inspect_err(|e| pr_err!("no free physical address range for BARs: {:?}\n", e))?;
        let (start, end) = (window.start(), window.end());
        let bar2 = flag("bar2", module_parameters::bar2.value())?;
        let spdm = flag("spdm", module_parameters::spdm.value())?;
        let emulator = Emulator::new(dev, count, vfs, bar2, spdm)?;
        let pools = Pools(emulator.clone());
        let bridge = HostBridge::new(dev, BUSNR, window, Bus(emulator.clone()))
            .inspect_err(|e| pr_err!("registering the host bridge failed: {:?}\n", e))?;
        let domain = bridge.access(dev)?.domain();

        let root = Dir::new(c"devsec_bus");
        let mut files = KVec::with_capacity(count * (1 + vfs), GFP_KERNEL)?;
        for index in 0..count {
            let devfn = devfn_of(index);
            // The PF at function 0, its VFs at 1 and up.
            for i in 0..=vfs {
                let func = i.checked_sub(1).map_or(Func::Pf, Func::Vf);
                let data = EndpointFiles {
                    emulator: emulator.clone(),
                    domain,
                    index,
                    func,
                };
                // CAST: `i <= MAX_VFS`.
                let scope = function_files(&root, data, devfn + i as u8)?;
                files.push(scope, GFP_KERNEL)?;
            }
        }

        let spdm_files = KBox::pin_init(
            root.scope((), c"spdm", |(), dir| {
                dir.read_only_file(c"sign_ns", &bus_spdm::SIGN_NS);
            }),
            GFP_KERNEL,
        )?;

        pr_info!(
            "{} TDISP endpoint(s) on {:04x}:{:02x}, BAR window [mem {:#x}-{:#x}]\n",
            count,
            domain,
            BUSNR,
            start,
            end
        );
        if vfs > 0 {
            pr_info!("each endpoint is an SR-IOV PF with {} VF(s)\n", vfs);
        }
        Ok(Self {
            domain,
            _files: files,
            _spdm_files: spdm_files,
            _root: root,
            _bridge: bridge,
            _pools: pools,
            _parent: parent,
        })
    }
}

impl Drop for DevsecBus {
    fn drop(&mut self) {
        pr_info!("removing {:04x}:{:02x}\n", self.domain, BUSNR);
    }
}
