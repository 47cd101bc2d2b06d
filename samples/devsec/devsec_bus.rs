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
//!   claimed from unused physical address space;
//! - a DOE extended capability at 0x100 answering DOE Discovery and CMA/SPDM, the latter
//!   carrying TDISP to a [`tdisp::Responder`];
//! - an IDE extended capability (one selective stream) at 0x180.
//!
//! Endpoint `i` sits at slot `i % 32`, function `i / 32`: the first 32 are single-function
//! devices 00.0 ... 1f.0, further ones become functions of those slots.
//!
//! The TDISP interface ID of an endpoint is its requester ID (bus << 8 | devfn) without a
//! segment. Its interface report has one range: BAR0 as currently programmed.
//!
//! Configuration cycles reach an endpoint in atomic context, possibly under the PCI core's raw
//! `pci_lock` (config writes from user space), where the kernel's CRNG may not be used. Each
//! endpoint therefore keeps a small pool of start nonces drawn in process context: filled when
//! the endpoint is created, and refilled by a work item after a LOCK_INTERFACE_REQUEST took
//! one. An endpoint whose pool is empty (more LOCKs in a row than the pool holds, before the
//! work item ran) answers INSUFFICIENT_ENTROPY, whoever drives its DOE mailbox.
//!
//! Per endpoint, `/sys/kernel/debug/devsec_bus/<pci name>/` has:
//!
//! - `tdisp_state` (read): `CONFIG_UNLOCKED`, `CONFIG_LOCKED`, `RUN` or `ERROR`.
//! - `fault` (write one word): `error` (go to ERROR now), `report_range` (report range off by a
//!   page), `report_count` (a range missing), `report_truncated` (report cut short),
//!   `bad_nonce` (the next START in CONFIG_LOCKED fails with INVALID_NONCE),
//!   `error_after_start` (the next successful START is followed at once by ERROR), `doe_busy`
//!   (mailbox BUSY; each request fails until `none`), `doe_timeout` (requests are accepted but
//!   never answered), `none` (clear all). Read: the active faults, or `none`.
//! - `remove` (write `1`): surprise removal; the function stops answering configuration
//!   cycles and its `pci_dev` is removed. The directory stays until the module is unloaded.

use kernel::{
    bindings,
    debugfs::{
        Dir,
        Scope, //
    },
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
        new_raw_spinlock_irq,
        Arc,
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
    },
}

/// Root bus number of the emulated host bridge.
const BUSNR: u8 = 1;
/// Functions per bus.
const MAX_ENDPOINTS: usize = 256;
/// Slots per bus.
const SLOTS: usize = 32;

/// Size of BAR0.
const BAR0_SIZE: u64 = 16 * 1024;
/// Size of the memory window: room for the BAR0 of every possible endpoint.
const WINDOW_SIZE: u64 = MAX_ENDPOINTS as u64 * BAR0_SIZE;
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
const CLASS: u32 = 0xff0000;
const REVISION: u32 = 0x01;

// Type 0 configuration header: dword offsets of the registers the function implements.
const VENDOR_DWORD: u16 = config_offset(bindings::PCI_VENDOR_ID);
const COMMAND_DWORD: u16 = config_offset(bindings::PCI_COMMAND);
const CLASS_DWORD: u16 = config_offset(bindings::PCI_CLASS_REVISION);
const CACHE_LINE_DWORD: u16 = config_offset(bindings::PCI_CACHE_LINE_SIZE);
const BAR0_DWORD: u16 = config_offset(bindings::PCI_BASE_ADDRESS_0);
const BAR1_DWORD: u16 = config_offset(bindings::PCI_BASE_ADDRESS_1);
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

/// Builds an extended capability header.
const fn ext_cap_header(id: u32, next: u16) -> u32 {
    id | (1 << 16) | ((next as u32) << 20)
}

/// DOE write mailbox capacity in bytes; far above the largest TDISP request.
const DOE_WBUF: usize = 256;
/// DOE read mailbox capacity in bytes: header and the largest TDISP response.
const DOE_RBUF: usize = 8 + tdisp::MAX_MESSAGE_LEN.next_multiple_of(4);

/// Start nonces an endpoint keeps ready (see the module documentation).
const NONCE_POOL_LEN: usize = 4;

/// Returns a nonce from the kernel's CRNG.
///
/// Process context only: `get_random_bytes()` takes a `spinlock_t`, which must not nest in the
/// endpoint's raw spinlock nor in the PCI core's raw `pci_lock`.
fn draw_nonce() -> tdisp::Nonce {
    let mut nonce = tdisp::Nonce::default();
    // SAFETY: `nonce` is valid for writes of `nonce.len()` bytes.
    unsafe { bindings::get_random_bytes(nonce.as_mut_ptr().cast(), nonce.len()) };
    nonce
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

/// Injected faults that persist until cleared (see the module documentation).
#[derive(Clone, Copy, Default)]
struct Faults {
    bad_nonce: bool,
    error_after_start: bool,
    doe_busy: bool,
    doe_timeout: bool,
}

/// One emulated endpoint (a PCI function).
struct Endpoint {
    present: bool,
    multifunction: bool,
    command: u16,
    cache_line: u8,
    int_line: u8,
    /// BAR0 address bits (BAR0 low | BAR1 << 32).
    bar: u64,
    devctl: u16,
    devctl2: u16,
    ide_ctl: u32,
    ide_sel_ctl: u32,
    ide_rid: [u32; 2],
    doe: Doe,
    responder: tdisp::Responder,
    faults: Faults,
    /// Start nonces for LOCK_INTERFACE_REQUEST.
    nonces: NoncePool,
}

impl Endpoint {
    /// Returns a function at `devfn`. Process context only: it fills the nonce pool.
    fn new(devfn: u8, multifunction: bool) -> Self {
        let requester_id = (u16::from(BUSNR) << 8) | u16::from(devfn);
        Self {
            present: true,
            multifunction,
            command: 0,
            cache_line: 0,
            int_line: 0,
            bar: 0,
            devctl: 0,
            devctl2: 0,
            ide_ctl: 0,
            ide_sel_ctl: 0,
            ide_rid: [0; 2],
            doe: Doe::new(),
            responder: tdisp::Responder::new(tdisp::function_id(requester_id, None)),
            faults: Faults::default(),
            nonces: NoncePool::new(),
        }
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
            IDE_CAP => ext_cap_header(bindings::PCI_EXT_CAP_ID_IDE, 0),
            IDE_CAPABILITIES => IDE_CAP_VALUE,
            IDE_CTL => self.ide_ctl,
            IDE_SEL_CTL => self.ide_sel_ctl,
            IDE_SEL_RID_1 => self.ide_rid[0],
            IDE_SEL_RID_2 => self.ide_rid[1],
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
                let new = merge(u32::from(self.command)) as u16 & COMMAND_WRITABLE;
                let cleared = self.command & !new & COMMAND_DECODE;
                self.command = new;
                if cleared != 0 {
                    self.responder.config_changed();
                }
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
        let bars = [tdisp::Bar {
            index: 0,
            start: bar,
            len: BAR0_SIZE,
        }];
        // One BAR always fits; `set_bars()` moves a locked interface to ERROR.
        let _ = self.responder.set_bars(&bars);
    }

    fn doe_control(&mut self, value: u32) {
        if value & bindings::PCI_DOE_CTRL_ABORT != 0 {
            self.doe.abort();
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
                self.inject_bad_nonce(payload);
                // The responder draws the start nonce of a successful LOCK_INTERFACE_REQUEST
                // from the pool. An empty pool gives it an all-zero nonce, which it answers
                // with INSUFFICIENT_ENTROPY.
                let nonces = &mut self.nonces;
                let mut rng = |buf: &mut [u8]| {
                    buf.fill(0);
                    if let Some(nonce) = nonces.take() {
                        for (dst, src) in buf.iter_mut().zip(nonce.iter()) {
                            *dst = *src;
                        }
                    }
                };
                let is_start = matches!(
                    tdisp::decode_request(payload),
                    Ok((_, tdisp::Request::StartInterface { .. }))
                );
                let n = self
                    .responder
                    .handle(payload, &mut self.doe.rbuf[8..], &mut rng);
                // With `error_after_start` armed, a START that succeeded is followed at once
                // by an error of the interface (RUN -> ERROR); the fault is then spent.
                if is_start
                    && self.faults.error_after_start
                    && self.responder.state() == tdisp::State::Run
                {
                    self.responder.force_error();
                    self.faults.error_after_start = false;
                }
                n != 0 && self.doe.respond(tdisp::DOE_TYPE_CMA, n)
            }
            _ => false,
        }
    }

    /// With `bad_nonce` armed, corrupts the nonce of a START_INTERFACE the responder would
    /// otherwise check, so that it answers INVALID_NONCE; the fault is then spent.
    fn inject_bad_nonce(&mut self, request: &mut [u8]) {
        if !self.faults.bad_nonce || self.responder.state() != tdisp::State::ConfigLocked {
            return;
        }
        let Ok((_, tdisp::Request::StartInterface { .. })) = tdisp::decode_request(request) else {
            return;
        };
        if let Some(byte) = request.get_mut(tdisp::TDISP_OVERHEAD) {
            *byte ^= 0xff;
            self.faults.bad_nonce = false;
        }
    }
}

/// The functions of the bus: `endpoints[i]` is at slot `i % 32`, function `i / 32`.
#[pin_data]
struct Emulator {
    endpoints: KVec<Pin<KBox<RawSpinLockIrq<Endpoint>>>>,
    /// Refills the nonce pools, in process context.
    #[pin]
    refill: Work<Emulator>,
}

impl_has_work! {
    impl HasWork<Self> for Emulator { self.refill }
}

impl WorkItem for Emulator {
    type Pointer = Arc<Emulator>;

    fn run(this: Arc<Emulator>) {
        for ep in &this.endpoints {
            // Draw outside the endpoint lock; a nonce drawn for a pool that filled up
            // meanwhile is dropped.
            while !ep.lock().nonces.is_full() {
                let nonce = draw_nonce();
                ep.lock().nonces.put(nonce);
            }
        }
    }
}

impl Emulator {
    /// Returns `count` functions. Process context only: it fills their nonce pools.
    fn new(count: usize) -> Result<Arc<Self>> {
        let mut endpoints = KVec::with_capacity(count, GFP_KERNEL)?;
        for index in 0..count {
            let devfn = devfn_of(index);
            // Function 0 of a slot announces further functions.
            let multifunction = index % SLOTS + SLOTS < count;
            endpoints.push(
                KBox::pin_init(
                    new_raw_spinlock_irq!(Endpoint::new(devfn, multifunction)),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
        }
        Arc::pin_init(
            pin_init!(Self {
                endpoints,
                refill <- new_work!("devsec_bus::Emulator::refill"),
            }),
            GFP_KERNEL,
        )
    }

    fn endpoint(&self, bus: u8, devfn: u8) -> Option<&RawSpinLockIrq<Endpoint>> {
        if bus != BUSNR {
            return None;
        }
        let index = usize::from(devfn & 7) * SLOTS + usize::from(devfn >> 3);
        self.endpoints.get(index).map(|ep| &**ep)
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
        let ep = self
            .0
            .endpoint(bus, devfn)
            .ok_or(ConfigError::DeviceNotFound)?;
        let ep = ep.lock();
        if !ep.present {
            return Err(ConfigError::DeviceNotFound);
        }
        let dword = ep.read_dword(offset & !3);
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
        let ep = self
            .0
            .endpoint(bus, devfn)
            .ok_or(ConfigError::DeviceNotFound)?;
        let shift = 8 * u32::from(offset & 3);
        let refill = {
            let mut ep = ep.lock();
            if !ep.present {
                return Err(ConfigError::DeviceNotFound);
            }
            ep.write_dword(offset & !3, size.mask() << shift, value << shift);
            !ep.nonces.is_full()
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

/// What the debugfs files of one endpoint operate on.
struct EndpointFiles {
    emulator: Arc<Emulator>,
    /// PCI domain of the host bridge.
    domain: u32,
    index: usize,
}

impl EndpointFiles {
    fn endpoint(&self) -> &RawSpinLockIrq<Endpoint> {
        &self.emulator.endpoints[self.index]
    }
}

/// Reads a short, trimmed word written to a debugfs file.
fn read_word<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8; 32]) -> Result<&'a str> {
    let len = reader.len();
    let dst = buf.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(dst)?;
    Ok(core::str::from_utf8(dst).map_err(|_| EINVAL)?.trim())
}

fn state_show(files: &EndpointFiles, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let state = files.endpoint().lock().responder.state();
    writeln!(f, "{}", state.name())
}

/// Fault names accepted by the `fault` file, in the order they are listed.
const FAULT_NAMES: [&str; 7] = [
    "report_range",
    "report_count",
    "report_truncated",
    "bad_nonce",
    "error_after_start",
    "doe_busy",
    "doe_timeout",
];

fn fault_show(files: &EndpointFiles, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (faults, corruption) = {
        let ep = files.endpoint().lock();
        (ep.faults, ep.responder.report_corruption())
    };
    let active = [
        corruption == tdisp::ReportCorruption::RangeMismatch,
        corruption == tdisp::ReportCorruption::RangeCount,
        corruption == tdisp::ReportCorruption::Truncated,
        faults.bad_nonce,
        faults.error_after_start,
        faults.doe_busy,
        faults.doe_timeout,
    ];
    let mut any = false;
    for (name, _) in FAULT_NAMES.iter().zip(active).filter(|(_, on)| *on) {
        write!(f, "{}{}", if any { " " } else { "" }, name)?;
        any = true;
    }
    writeln!(f, "{}", if any { "" } else { "none" })
}

fn fault_store(files: &EndpointFiles, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let word = read_word(reader, &mut buf)?;
    let mut ep = files.endpoint().lock();
    match word {
        "error" => ep.responder.force_error(),
        "report_range" => ep
            .responder
            .set_report_corruption(tdisp::ReportCorruption::RangeMismatch),
        "report_count" => ep
            .responder
            .set_report_corruption(tdisp::ReportCorruption::RangeCount),
        "report_truncated" => ep
            .responder
            .set_report_corruption(tdisp::ReportCorruption::Truncated),
        "bad_nonce" => ep.faults.bad_nonce = true,
        "error_after_start" => ep.faults.error_after_start = true,
        "doe_busy" => {
            ep.faults.doe_busy = true;
            ep.doe.busy = true;
        }
        "doe_timeout" => ep.faults.doe_timeout = true,
        "none" => {
            // A mailbox held busy by the fault is released too.
            if ep.faults.doe_busy {
                ep.doe.busy = false;
            }
            ep.faults = Faults::default();
            ep.responder
                .set_report_corruption(tdisp::ReportCorruption::None);
        }
        _ => {
            drop(ep);
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
        // From now on the function answers configuration cycles like an empty slot.
        ep.present = false;
    }
    host::remove_function(files.domain, BUSNR, devfn_of(files.index))
}

struct DevsecBus {
    domain: u32,
    // Dropped in this order: the files first (they may remove functions of the bus), then the
    // bridge, which removes the bus and releases the window, then the emulator, after its
    // refill work, and last the parent of the bridge.
    _files: KVec<Pin<KBox<Scope<EndpointFiles>>>>,
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
        let emulator = Emulator::new(count)?;
        let pools = Pools(emulator.clone());
        let bridge = HostBridge::new(dev, BUSNR, window, Bus(emulator.clone()))
            .inspect_err(|e| pr_err!("registering the host bridge failed: {:?}\n", e))?;
        let domain = bridge.access(dev)?.domain();

        let root = Dir::new(c"devsec_bus");
        let mut files = KVec::with_capacity(count, GFP_KERNEL)?;
        for index in 0..count {
            let devfn = devfn_of(index);
            let name = CString::try_from_fmt(fmt!(
                "{:04x}:{:02x}:{:02x}.{}",
                domain,
                BUSNR,
                devfn >> 3,
                devfn & 7
            ))?;
            let data = EndpointFiles {
                emulator: emulator.clone(),
                domain,
                index,
            };
            let scope = root.scope(data, &name, |files, dir| {
                dir.read_callback_file(c"tdisp_state", files, &state_show);
                dir.read_write_callback_file(c"fault", files, &fault_show, &fault_store);
                dir.write_only_callback_file(c"remove", files, &remove_store);
            });
            files.push(KBox::pin_init(scope, GFP_KERNEL)?, GFP_KERNEL)?;
        }

        pr_info!(
            "{} TDISP endpoint(s) on {:04x}:{:02x}, BAR window [mem {:#x}-{:#x}]\n",
            count,
            domain,
            BUSNR,
            start,
            end
        );
        Ok(Self {
            domain,
            _files: files,
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
