// SPDX-License-Identifier: GPL-2.0

//! Devsec TSM sample: a TEE Security Manager that locks, validates and starts TDISP interfaces.
//!
//! The module registers one devsec TSM (`/sys/class/tsm/tsmN`, `pci_mode` "devsec") below a
//! faux device. The PCI core calls it through `/sys/bus/pci/devices/<bdf>/tsm/{lock,accept,
//! unlock}`; it talks SPDM and TDISP to the function over the function's CMA/SPDM DOE mailbox
//! (an SR-IOV virtual function's over its physical function's), with the messages built and
//! checked by the shared codecs in `spdm/` and `tdisp/`:
//!
//! - lock: first SPDM device authentication (`tsm_spdm.rs`: VCA, the certificate chain
//!   validated against the trust anchors userspace put into the keyring `.devsec_tsm`, signed
//!   CHALLENGE, signed measurements); the chain, the measurements and their nonce are evidence.
//!   Then GET_TDISP_VERSION (1.0 required), GET_TDISP_CAPABILITIES (the requests used below
//!   and the NO_FW_UPDATE lock flag required), LOCK_INTERFACE_REQUEST with NO_FW_UPDATE and
//!   [`MMIO_REPORTING_OFFSET`], then GET_DEVICE_INTERFACE_REPORT in portions of
//!   [`REPORT_PORTION_LEN`] bytes (at most [`MAX_REPORT_ROUNDS`] requests). The start nonce,
//!   the capabilities body and the report, as received, are kept in the function's context;
//!   the last two with the TDISP version are the evidence the PCI core shows to userspace. If
//!   the report cannot be fetched, the interface is stopped again and lock fails.
//! - accept: SPDM again: same chain (by digest), same measurement record, newly signed; then
//!   GET_DEVICE_INTERFACE_REPORT again, which must be byte for byte the report of the
//!   lock (the evidence userspace verified); the report validated by address against the
//!   function's BARs (`check_report_against_bars`: every range, after subtracting the reporting
//!   offset, page aligned inside exactly one BAR, no overlaps, every BAR reported, no reserved
//!   bits, UPDATABLE refused; NON_TEE ranges and, as this TSM does not request LOCK_MSIX, the
//!   MSI-X table and PBA are legal but stay shared) and NO_UPDATE_AFTER_LOCK required;
//!   START_INTERFACE_REQUEST with the lock nonce; then GET_DEVICE_INTERFACE_STATE must report
//!   RUN; then the private ranges of the report are registered with the PCI core
//!   (`set_private_mmio()`, one "PCI MMIO Encrypted" resource each). Only then does accept
//!   succeed; a failure after START stops the interface and locks it again.
//! - unlock: STOP_INTERFACE_REQUEST, best effort (the function may be gone), then the context
//!   is freed.
//!
//! `/sys/kernel/debug/devsec_tsm/mmio_fault` (a number, see [`MmioFault`]; 0 = none) makes the
//! TSM misuse `set_private_mmio()`, for tests of the PCI core's refusals; `skip_spdm` (non-zero)
//! makes it lock without authenticating, for tests of devices that refuse TDISP then;
//! `timing/` has the time the parts of the last lock took, in nanoseconds (`vca_ns`,
//! `certificates_ns`, `challenge_ns`, `measurements_ns`, `tdisp_lock_ns`) and whether its
//! chain came from the cache (`chain_cached`).
//!
//! The interface ID is the function's requester ID (bus << 8 | devfn), without a segment (the
//! segment-valid bit clear), as the emulated endpoints of `devsec_bus` expect.
//!
//! # Errors
//!
//! Every failure is logged with `dev_err` naming the message and the cause, and returned to
//! the sysfs writer as:
//!
//! | cause                                                         | errno             |
//! |---------------------------------------------------------------|-------------------|
//! | no CMA/SPDM DOE mailbox (of a VF: on its PF, or PF removed)   | `ENODEV`          |
//! | SPDM: VERSION without 1.2                                     | `EPROTONOSUPPORT` |
//! | SPDM: CAPABILITIES without CERT, CHAL or signed MEAS, or no   | `EOPNOTSUPP`      |
//! | DMTF measurements negotiated                                  |                   |
//! | SPDM: ALGORITHMS not RSASSA-3072 and SHA-384                  | `ENOPKG`          |
//! | SPDM: a certificate not signed by a trust anchor or by the    | `ENOKEY`          |
//! | certificate before it (untrusted root, no anchors at all)     |                   |
//! | SPDM: a certificate the X.509 parser refuses (malformed)      | `EBADMSG`         |
//! | SPDM: a certificate whose signature is wrong                  | `EKEYREJECTED`    |
//! | SPDM: CHALLENGE_AUTH or MEASUREMENTS signature does not       | `EKEYREJECTED`    |
//! | verify over the transcript (includes a replayed MEASUREMENTS  |                   |
//! | that answers another nonce)                                   |                   |
//! | SPDM: malformed response, truncated certificate portion,      | `EPROTO`          |
//! | chain framing, root hash or digest wrong, SPDM ERROR          |                   |
//! | (e.g. UnexpectedRequest)                                      |                   |
//! | SPDM at accept: chain or measurement record not the lock's    | `EBADMSG`         |
//! | DOE: no answer within the DOE timeout (one second)            | `ETIMEDOUT`       |
//! | DOE: mailbox busy                                             | `EBUSY`           |
//! | DOE: mailbox error, wrong object type, device gone            | `EIO`             |
//! | response malformed, oversized, of another type or interface   | `EPROTO`          |
//! | SPDM ERROR VERSION_MISMATCH                                   | `EPROTONOSUPPORT` |
//! | SPDM ERROR UNSUPPORTED_REQUEST (VENDOR_DEFINED or TDISP)      | `EOPNOTSUPP`      |
//! | SPDM ERROR, any other code                                    | `EPROTO`          |
//! | all-zero start nonce                                          | `EPROTO`          |
//! | interface report malformed (truncated, inconsistent portions) | `EPROTO`          |
//! | interface report differs from the one fetched at lock         | `EBADMSG`         |
//! | interface report refused: ranges not in exactly one BAR each, | `EINVAL`          |
//! | overlapping, a BAR not reported, reserved bits, UPDATABLE     |                   |
//! | interface report lacks NO_UPDATE_AFTER_LOCK                   | `EINVAL`          |
//! | TDISP 1.0 not offered, or TDISP_ERROR VERSION_MISMATCH        | `EPROTONOSUPPORT` |
//! | a needed request or lock flag not supported                   | `EOPNOTSUPP`      |
//! | TDISP_ERROR UNSUPPORTED_REQUEST                               | `EOPNOTSUPP`      |
//! | TDISP_ERROR INVALID_REQUEST                                   | `EINVAL`          |
//! | TDISP_ERROR BUSY                                              | `EBUSY`           |
//! | TDISP_ERROR INVALID_INTERFACE_STATE, interface in ERROR¹      | `EIO`             |
//! | TDISP_ERROR INVALID_INTERFACE_STATE, other state¹             | `EBUSY`           |
//! | TDISP_ERROR INVALID_INTERFACE                                 | `ENODEV`          |
//! | TDISP_ERROR INVALID_NONCE                                     | `EACCES`          |
//! | TDISP_ERROR INSUFFICIENT_ENTROPY                              | `EAGAIN`          |
//! | TDISP_ERROR INVALID_DEVICE_CONFIGURATION                      | `ENXIO`           |
//! | TDISP_ERROR UNSPECIFIED or an unknown code                    | `EIO`             |
//! | state after START is ERROR                                    | `EIO`             |
//! | state after START is neither RUN nor ERROR                    | `EPROTO`          |
//! | private MMIO refused by the PCI core (see `set_private_mmio`) | its error         |
//!
//! ¹ INVALID_INTERFACE_STATE carries no state (its error data is 0), so the TSM asks with
//! GET_DEVICE_INTERFACE_STATE; if that fails too, `EIO`.
//!
//! There is no SPDM secure session (see `tsm_spdm.rs` for what is and is not authenticated).

use core::ops::Range;
use kernel::{
    bindings,
    debugfs,
    devres::Devres,
    faux,
    fmt,
    page::PAGE_SIZE,
    pci::{doe, tsm},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        new_mutex, Mutex,
    },
    time::{
        Instant,
        Monotonic, //
    }, //
};

use kernel::alloc::AllocError;

/// The TSM side of the SPDM library in `spdm/`.
mod spdm {
    mod codec;
    mod requester;
    mod transcript;

    pub(crate) use codec::*;
    pub(crate) use requester::*;
    pub(crate) use transcript::*;
}

mod spdm_hash;
mod tsm_spdm;

use tsm_spdm::{
    lap,
    Authenticated,
    Authenticator,
    TIMING, //
};

/// The TSM side of the TDISP library in `tdisp/`.
mod tdisp {
    mod codec;
    mod report;
    mod requester;

    pub(crate) use codec::*;
    pub(crate) use report::*;
    pub(crate) use requester::*;
}

use tdisp::{
    check_report_against_bars,
    function_id,
    interface_info,
    lock_flags,
    spdm_error,
    Bar,
    CheckedReport,
    ErrorCode,
    LockParams,
    MessageType,
    Nonce,
    ReportAssembler,
    ReportCheckError,
    Request,
    Requester,
    RequesterError,
    State,
    MAX_MESSAGE_LEN,
    MAX_RANGES,
    TDISP_VERSION, //
};

module! {
    type: DevsecTsmModule,
    name: "devsec_tsm",
    authors: ["coco-accept developers"],
    description: "Devsec TSM sample: TDISP lock, accept and unlock over DOE",
    license: "GPL",
}

/// The armed [`MmioFault`], by number; written through `/sys/kernel/debug/devsec_tsm/mmio_fault`.
static MMIO_FAULT: Atomic<u32> = Atomic::new(0);

/// Non-zero: lock without authenticating the device (no SPDM exchange before TDISP), for tests
/// of devices that refuse that; `/sys/kernel/debug/devsec_tsm/skip_spdm`.
static SKIP_SPDM: Atomic<u32> = Atomic::new(0);

/// Misuses of `set_private_mmio()` the TSM can be made to commit, so that tests see the PCI
/// core refuse each one and leave nothing private behind. Numbered as in `mmio_fault`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MmioFault {
    /// 0: none, register the private ranges of the report.
    None,
    /// 1: add a range that starts in the middle of a page.
    UnalignedStart,
    /// 2: add a range that ends in the middle of a page.
    UnalignedEnd,
    /// 3: add an empty range.
    Empty,
    /// 4: add a range outside every BAR (the first page of physical memory).
    Outside,
    /// 5: add the first private range a second time.
    Overlap,
    /// 6: as 5, but ignore the error and accept (the PCI core registers nothing).
    OverlapIgnored,
    /// 7: register a second time (with no ranges) after a successful registration.
    Twice,
    /// 8: fail the accept after a successful registration.
    FailAfter,
    /// 9: call `set_private_mmio()` from lock.
    InLock,
    /// 10: call `set_private_mmio()` from unlock.
    InUnlock,
}

impl MmioFault {
    fn armed() -> Self {
        match MMIO_FAULT.load(Relaxed) {
            1 => Self::UnalignedStart,
            2 => Self::UnalignedEnd,
            3 => Self::Empty,
            4 => Self::Outside,
            5 => Self::Overlap,
            6 => Self::OverlapIgnored,
            7 => Self::Twice,
            8 => Self::FailAfter,
            9 => Self::InLock,
            10 => Self::InUnlock,
            _ => Self::None,
        }
    }

    /// The bad range this fault adds after the ranges of the report, whose first is `first`.
    fn extra_range(self, first: &Range<u64>) -> Option<Range<u64>> {
        // CAST: a page is far smaller than the address space.
        let half_page = PAGE_SIZE as u64 / 2;
        match self {
            Self::UnalignedStart => Some(first.start + half_page..first.end),
            Self::UnalignedEnd => Some(first.start..first.start + half_page),
            Self::Empty => Some(first.start..first.start),
            Self::Outside => Some(0..PAGE_SIZE as u64),
            Self::Overlap | Self::OverlapIgnored => Some(first.clone()),
            _ => None,
        }
    }

    /// Calls `set_private_mmio()` outside accept, as [`MmioFault::InLock`] and
    /// [`MmioFault::InUnlock`] ask, and logs what it returned.
    fn misplaced_call(self, pdev: &tsm::Device, op: &str) {
        let armed = match self {
            Self::InLock => "lock",
            Self::InUnlock => "unlock",
            _ => return,
        };
        if armed != op {
            return;
        }
        let bar0 = match (pdev.resource_start(0), pdev.resource_len(0)) {
            (Ok(start), Ok(len)) => start..start + len,
            _ => 0..0,
        };
        let errno = pdev
            .set_private_mmio(&[bar0])
            .map_or_else(|err| err.to_errno(), |()| 0);
        dev_info!(pdev, "set_private_mmio() in {}: {}\n", op, errno);
    }
}

/// Offset the device adds to MMIO addresses in its interface report (LOCK_INTERFACE_REQUEST
/// `mmio_reporting_offset`). Non-zero and page aligned, so a device that ignores it fails the
/// BAR check.
const MMIO_REPORTING_OFFSET: u64 = 1 << 40;

/// LOCK_INTERFACE flags this TSM requests: no firmware update while locked. Not LOCK_MSIX:
/// the guest's MSI-X table and PBA stay shared with the host.
const LOCK_FLAGS: u16 = lock_flags::NO_FW_UPDATE;

/// Report portion requested per GET_DEVICE_INTERFACE_REPORT. Deliberately small: a report of a
/// function with one BAR takes two requests, so every accept exercises the paging.
const REPORT_PORTION_LEN: u16 = 32;

/// Upper bound of GET_DEVICE_INTERFACE_REPORT requests per accept: enough for the largest
/// report the codec accepts in full portions, plus slack for a device that returns shorter
/// portions; a device that needs more is not accepted.
const MAX_REPORT_ROUNDS: usize = 2 * tdisp::MAX_REPORT_LEN.div_ceil(REPORT_PORTION_LEN as usize);

/// DOE buffer length: one dword more than the longest TDISP message, so that a response too
/// long to be valid shows as a full buffer instead of being cut silently.
const BUF_LEN: usize = max(MAX_MESSAGE_LEN, spdm::MAX_MESSAGE_LEN).next_multiple_of(4) + 4;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// A dword-aligned DOE payload buffer (`pci_doe()` moves payloads in dwords).
#[repr(C, align(4))]
struct DoeBuf([u8; BUF_LEN]);

/// Request and response buffers of one operation.
struct Bufs {
    req: DoeBuf,
    rsp: DoeBuf,
}

/// Why a TDISP step failed.
enum Failure {
    /// The DOE exchange failed with this error.
    Doe(Error),
    /// The response is longer than any valid TDISP message.
    Oversized,
    /// The response is unacceptable (codec, interface ID, type, TDISP_ERROR, ...).
    Protocol(RequesterError),
    /// The device needed more than [`MAX_REPORT_ROUNDS`] report requests.
    TooManyRounds,
    /// The interface report is not the one the device returned at lock.
    ReportChanged,
    /// The interface report does not describe the function's BARs, or has a range the TSM
    /// refuses.
    Mismatch(ReportCheckError),
    /// The report lacks NO_UPDATE_AFTER_LOCK although NO_FW_UPDATE was requested.
    UpdatableAfterLock(u16),
    /// The function has more BARs than an interface report can describe.
    TooManyBars,
    /// A capability this TSM relies on is missing.
    Unsupported(&'static str),
    /// The interface is not in the state the step requires.
    WrongState(State),
    /// The device answered INVALID_INTERFACE_STATE; the state GET_DEVICE_INTERFACE_STATE
    /// reported afterwards, if it did.
    InvalidState(Option<State>),
}

impl From<RequesterError> for Failure {
    fn from(err: RequesterError) -> Self {
        Self::Protocol(err)
    }
}

impl Failure {
    /// Returns the errno reported for this failure (see the table in the module documentation).
    fn errno(&self) -> Error {
        match self {
            Self::Doe(err) => *err,
            Self::Oversized | Self::TooManyRounds => EPROTO,
            Self::ReportChanged => EBADMSG,
            Self::Mismatch(_) | Self::UpdatableAfterLock(_) | Self::TooManyBars => EINVAL,
            Self::Unsupported(_) => EOPNOTSUPP,
            Self::WrongState(State::Error) => EIO,
            Self::WrongState(_) => EPROTO,
            Self::InvalidState(Some(State::Error) | None) => EIO,
            Self::InvalidState(Some(_)) => EBUSY,
            Self::Protocol(err) => match err {
                RequesterError::Tdisp { code, .. } => tdisp_errno(*code),
                RequesterError::Spdm { code, .. } => spdm_errno(*code),
                RequesterError::VersionUnsupported => EPROTONOSUPPORT,
                RequesterError::ReportTooLarge
                | RequesterError::ReportInconsistent
                | RequesterError::ReportNoProgress
                | RequesterError::Report(_)
                | RequesterError::Codec(_)
                | RequesterError::InterfaceMismatch { .. }
                | RequesterError::UnexpectedResponse { .. }
                | RequesterError::ZeroNonce => EPROTO,
            },
        }
    }
}

/// Maps a TDISP_ERROR code to an errno. INVALID_INTERFACE_STATE is refined with the state
/// by [`Session::step`] ([`Failure::InvalidState`]); unrefined it is `EIO`.
fn tdisp_errno(code: u32) -> Error {
    match ErrorCode::from_u32(code) {
        Some(ErrorCode::Busy) => EBUSY,
        Some(ErrorCode::InvalidNonce) => EACCES,
        Some(ErrorCode::VersionMismatch) => EPROTONOSUPPORT,
        Some(ErrorCode::UnsupportedRequest) => EOPNOTSUPP,
        Some(ErrorCode::InvalidRequest) => EINVAL,
        Some(ErrorCode::InvalidInterface) => ENODEV,
        Some(ErrorCode::InsufficientEntropy) => EAGAIN,
        Some(ErrorCode::InvalidDeviceConfiguration) => ENXIO,
        Some(
            ErrorCode::InvalidInterfaceState
            | ErrorCode::Unspecified
            | ErrorCode::VendorSpecificError,
        )
        | None => EIO,
    }
}

/// Maps an SPDM ERROR code to an errno.
fn spdm_errno(code: u8) -> Error {
    match code {
        spdm_error::VERSION_MISMATCH => EPROTONOSUPPORT,
        spdm_error::UNSUPPORTED_REQUEST => EOPNOTSUPP,
        _ => EPROTO,
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Doe(err) => write!(f, "DOE exchange failed ({})", err.to_errno()),
            Self::Oversized => write!(f, "response longer than any TDISP message"),
            Self::TooManyRounds => write!(
                f,
                "interface report needs more than {MAX_REPORT_ROUNDS} requests"
            ),
            Self::ReportChanged => write!(f, "interface report changed since the lock"),
            Self::Mismatch(err) => write!(f, "interface report refused: {err:?}"),
            Self::UpdatableAfterLock(info) => write!(
                f,
                "interface report lacks NO_UPDATE_AFTER_LOCK (interface_info {info:#x})"
            ),
            Self::TooManyBars => write!(f, "function has more than {MAX_RANGES} BARs"),
            Self::Unsupported(what) => write!(f, "device does not support {what}"),
            Self::WrongState(state) => write!(f, "interface is in state {}", state.name()),
            Self::InvalidState(Some(state)) => write!(
                f,
                "device answered TDISP_ERROR INVALID_INTERFACE_STATE, interface in state {}",
                state.name()
            ),
            Self::InvalidState(None) => write!(
                f,
                "device answered TDISP_ERROR INVALID_INTERFACE_STATE, state unknown"
            ),
            Self::Protocol(RequesterError::Spdm { code, data }) => {
                write!(f, "device answered SPDM ERROR {code:#x} (data {data:#x})")
            }
            Self::Protocol(RequesterError::Tdisp { code, data }) => {
                let name = ErrorCode::from_u32(*code).map_or("unknown", ErrorCode::name);
                write!(
                    f,
                    "device answered TDISP_ERROR {name} ({code:#x}, data {data:#x})"
                )
            }
            Self::Protocol(err) => write!(f, "unacceptable response: {err:?}"),
        }
    }
}

/// Context of a locked function.
struct Locked {
    /// Requester for the function's interface ID.
    requester: Requester,
    /// Start nonce from LOCK_INTERFACE_RESPONSE.
    nonce: Nonce,
    /// TDISP_CAPABILITIES body, as received (evidence).
    caps: KVec<u8>,
    /// The interface report fetched right after LOCK_INTERFACE, as received (evidence).
    report: KVec<u8>,
    /// What SPDM authentication left (evidence), unless it was skipped (`skip_spdm`).
    spdm: Option<Authenticated>,
}

/// Returns a copy of `bytes`.
fn copy_bytes(bytes: &[u8]) -> Result<KVec<u8>, AllocError> {
    let mut v = KVec::with_capacity(bytes.len(), GFP_KERNEL)?;
    v.extend_from_slice(bytes, GFP_KERNEL)?;
    Ok(v)
}

impl Drop for Locked {
    fn drop(&mut self) {
        // The nonce authorises START; do not leave it in freed memory.
        self.nonce.fill(0);
    }
}

/// One TDISP conversation with a function: its mailbox, its interface and DOE buffers.
struct Session<'a> {
    pdev: &'a tsm::Device,
    mailbox: doe::Mailbox<'a>,
    requester: Requester,
    bufs: KBox<Bufs>,
}

impl<'a> Session<'a> {
    fn open(pdev: &'a tsm::Device, requester: Requester) -> Result<Self> {
        let Some(mailbox) = pdev.cma_mailbox() else {
            dev_err!(pdev, "TDISP: no CMA/SPDM DOE mailbox\n");
            return Err(ENODEV);
        };
        let bufs = KBox::new(
            Bufs {
                req: DoeBuf([0; BUF_LEN]),
                rsp: DoeBuf([0; BUF_LEN]),
            },
            GFP_KERNEL,
        )?;
        Ok(Self {
            pdev,
            mailbox,
            requester,
            bufs,
        })
    }

    /// Sends the first `req_len` bytes of `bufs.req`, receives the response into `bufs.rsp`
    /// and returns its length.
    fn exchange(
        mailbox: &doe::Mailbox<'_>,
        bufs: &mut Bufs,
        req_len: usize,
    ) -> Result<usize, Failure> {
        let req = bufs.req.0.get(..req_len).ok_or(Failure::Oversized)?;
        let n = mailbox
            .exchange(doe::FEATURE_CMA, req, &mut bufs.rsp.0)
            .map_err(Failure::Doe)?;
        if n > MAX_MESSAGE_LEN {
            return Err(Failure::Oversized);
        }
        Ok(n)
    }

    /// Exchanges `req` for a response stored in `rsp`; returns the response length.
    fn transfer(
        mailbox: &doe::Mailbox<'_>,
        bufs: &mut Bufs,
        req: &[u8],
        rsp: &mut [u8],
    ) -> Result<usize, Failure> {
        bufs.req
            .0
            .get_mut(..req.len())
            .ok_or(Failure::Oversized)?
            .copy_from_slice(req);
        let n = Self::exchange(mailbox, bufs, req.len())?;
        let (Some(dst), Some(src)) = (rsp.get_mut(..n), bufs.rsp.0.get(..n)) else {
            return Err(Failure::Oversized);
        };
        dst.copy_from_slice(src);
        Ok(n)
    }

    /// Sends `request` and decodes the response with `parse`.
    fn try_step<T>(
        &mut self,
        request: &Request,
        parse: impl FnOnce(&Requester, &[u8]) -> Result<T, RequesterError>,
    ) -> Result<T, Failure> {
        let bufs = &mut *self.bufs;
        let len = self.requester.encode(request, &mut bufs.req.0)?;
        let n = Self::exchange(&self.mailbox, bufs, len)?;
        let rsp = bufs.rsp.0.get(..n).ok_or(Failure::Oversized)?;
        Ok(parse(&self.requester, rsp)?)
    }

    /// Like [`Session::try_step`], but logs a failure and returns its errno. After
    /// INVALID_INTERFACE_STATE it asks for the state, which decides the errno.
    fn step<T>(
        &mut self,
        request: &Request,
        parse: impl FnOnce(&Requester, &[u8]) -> Result<T, RequesterError>,
    ) -> Result<T> {
        self.try_step(request, parse).map_err(|err| {
            let err = self.refine(err);
            self.fail(request.message_type(), err)
        })
    }

    /// Turns INVALID_INTERFACE_STATE, which does not say what the state is, into
    /// [`Failure::InvalidState`] with the state GET_DEVICE_INTERFACE_STATE reports.
    fn refine(&mut self, err: Failure) -> Failure {
        match err {
            Failure::Protocol(RequesterError::Tdisp { code, .. })
                if code == ErrorCode::InvalidInterfaceState as u32 =>
            {
                let state = self
                    .try_step(&Request::GetDeviceInterfaceState, Requester::parse_state)
                    .ok();
                Failure::InvalidState(state)
            }
            err => err,
        }
    }

    /// Logs `err` for the step sending `msg` and returns its errno.
    fn fail(&self, msg: MessageType, err: Failure) -> Error {
        dev_err!(self.pdev, "TDISP {}: {}\n", msg.name(), err);
        err.errno()
    }

    /// LOCK_INTERFACE with this TSM's parameters; returns the start nonce.
    fn lock_interface(&mut self) -> Result<Nonce> {
        let params = LockParams {
            flags: LOCK_FLAGS,
            default_stream_id: 0,
            mmio_reporting_offset: MMIO_REPORTING_OFFSET,
            bind_p2p_address_mask: 0,
        };
        self.step(&Request::LockInterface(params), Requester::parse_lock)
    }

    /// Checks that the device speaks TDISP 1.0 and supports what this TSM uses; returns the
    /// body of its TDISP_CAPABILITIES response.
    fn check_device(&mut self) -> Result<KVec<u8>> {
        self.step(&Request::GetVersion, Requester::parse_version)?;
        let request = Request::GetCapabilities { tsm_caps: 0 };
        let (caps, body) = self.step(&request, |requester, rsp| {
            let (caps, body) = requester.parse_capabilities(rsp)?;
            Ok((caps, copy_bytes(body)))
        })?;

        let needed = [
            MessageType::LockInterface,
            MessageType::GetDeviceInterfaceReport,
            MessageType::GetDeviceInterfaceState,
            MessageType::StartInterface,
            MessageType::StopInterface,
        ];
        let msg = MessageType::GetCapabilities;
        if let Some(missing) = needed.into_iter().find(|&req| !caps.supports(req)) {
            return Err(self.fail(msg, Failure::Unsupported(missing.name())));
        }
        if caps.lock_flags_supported & lock_flags::NO_FW_UPDATE == 0 {
            return Err(self.fail(msg, Failure::Unsupported("the NO_FW_UPDATE lock flag")));
        }
        Ok(body?)
    }

    /// Fetches the whole interface report, as received.
    fn fetch_report(&mut self) -> Result<ReportAssembler> {
        let msg = MessageType::GetDeviceInterfaceReport;
        let requester = self.requester;
        let mut rounds = 0;
        requester
            .fetch_report(REPORT_PORTION_LEN, |req, rsp| {
                rounds += 1;
                if rounds > MAX_REPORT_ROUNDS {
                    return Err(Failure::TooManyRounds);
                }
                Self::transfer(&self.mailbox, &mut self.bufs, req, rsp)
            })
            .map_err(|err| {
                let err = self.refine(err);
                self.fail(msg, err)
            })
    }

    /// Fetches the interface report, checks that it is `evidence` (the report of the lock)
    /// and checks it against the function's BARs; returns where its ranges lie and which
    /// are private.
    fn verify_report(&mut self, evidence: &[u8]) -> Result<CheckedReport> {
        let msg = MessageType::GetDeviceInterfaceReport;
        let bars = self.bars().map_err(|err| self.fail(msg, err))?;

        let received = self.fetch_report()?;
        if received.bytes() != evidence {
            return Err(self.fail(msg, Failure::ReportChanged));
        }
        let report = received
            .report()
            .map_err(|err| self.fail(msg, Failure::Protocol(err)))?;

        if report.interface_info & interface_info::NO_UPDATE_AFTER_LOCK == 0 {
            return Err(self.fail(msg, Failure::UpdatableAfterLock(report.interface_info)));
        }
        check_report_against_bars(&report, bars.as_slice(), MMIO_REPORTING_OFFSET, LOCK_FLAGS)
            .map_err(|err| self.fail(msg, Failure::Mismatch(err)))
    }

    /// Returns the function's BARs (the standard BARs with a non-empty resource).
    fn bars(&self) -> Result<BarList, Failure> {
        let mut list = BarList::default();
        for index in 0..bindings::PCI_STD_NUM_BARS {
            // Neither call fails for a standard BAR index.
            let len = self.pdev.resource_len(index).unwrap_or(0);
            if len == 0 {
                continue;
            }
            let start = self.pdev.resource_start(index).unwrap_or(0);
            let bar = list.bars.get_mut(list.len).ok_or(Failure::TooManyBars)?;
            *bar = Bar {
                // CAST: `index` < `PCI_STD_NUM_BARS`.
                index: index as u16,
                start,
                len,
            };
            list.len += 1;
        }
        Ok(list)
    }
}

/// The BARs of a function, as the report check wants them.
#[derive(Default)]
struct BarList {
    bars: [Bar; MAX_RANGES],
    len: usize,
}

impl BarList {
    fn as_slice(&self) -> &[Bar] {
        self.bars.get(..self.len).unwrap_or(&[])
    }
}

impl tsm_spdm::Transport for Session<'_> {
    fn exchange(&mut self, req: &[u8]) -> Result<&[u8], tsm_spdm::Failure> {
        let bufs = &mut *self.bufs;
        let too_long = tsm_spdm::Failure::Protocol(spdm::RequesterError::Codec(
            spdm::CodecError::BufferTooSmall,
        ));
        let Some(dst) = bufs.req.0.get_mut(..req.len()) else {
            return Err(too_long);
        };
        dst.copy_from_slice(req);
        let req = bufs.req.0.get(..req.len()).unwrap_or(&[]);
        let n = self
            .mailbox
            .exchange(doe::FEATURE_CMA, req, &mut bufs.rsp.0)
            .map_err(tsm_spdm::Failure::Doe)?;
        // A response that fills the buffer may have been cut: no SPDM message is that long.
        if n > spdm::MAX_MESSAGE_LEN {
            return Err(too_long);
        }
        Ok(bufs.rsp.0.get(..n).unwrap_or(&[]))
    }
}

/// The devsec TSM.
#[pin_data]
struct DevsecTsm {
    /// Authenticates devices with SPDM; holds the trust anchors.
    #[pin]
    auth: Mutex<Authenticator>,
}

impl DevsecTsm {
    /// Returns the TDISP requester for `pdev`'s interface.
    fn requester(pdev: &tsm::Device) -> Requester {
        Requester::new(function_id(pdev.dev_id(), None))
    }

    /// Authenticates the device of `pdev` with SPDM over `session`'s mailbox.
    fn authenticate(&self, pdev: &tsm::Device, session: &mut Session<'_>) -> Result<Authenticated> {
        let id = u32::from(pdev.dev_id());
        self.auth
            .lock()
            .authenticate(session, id)
            .inspect(|auth| {
                dev_info!(
                    pdev,
                    "SPDM: device authenticated (chain of {} bytes, measurements of {} bytes)\n",
                    auth.chain.len(),
                    auth.measurements.len()
                );
            })
            .map_err(|err| {
                dev_err!(pdev, "SPDM: device not authenticated: {}\n", err);
                err.errno()
            })
    }

    fn do_lock(&self, pdev: &tsm::Device) -> Result<Locked> {
        let requester = Self::requester(pdev);
        let mut session = Session::open(pdev, requester)?;
        let spdm = if SKIP_SPDM.load(Relaxed) != 0 {
            dev_warn!(
                pdev,
                "SPDM: skipped (skip_spdm), the device is not authenticated\n"
            );
            None
        } else {
            Some(self.authenticate(pdev, &mut session)?)
        };
        let mut since = Instant::<Monotonic>::now();
        let caps = session.check_device()?;
        let nonce = session.lock_interface()?;

        // The report as the device returns it now is the evidence of this lock; without it
        // the lock fails, so do not leave the interface locked.
        let report = session
            .fetch_report()
            .and_then(|received| Ok(copy_bytes(received.bytes())?));
        let report = match report {
            Ok(report) => report,
            Err(err) => {
                if session
                    .step(&Request::StopInterface, Requester::parse_stop)
                    .is_ok()
                {
                    dev_info!(
                        pdev,
                        "TDISP interface {:#x} stopped (no interface report at lock)\n",
                        requester.function_id()
                    );
                }
                return Err(err);
            }
        };

        lap(&TIMING.tdisp, &mut since);
        dev_info!(
            pdev,
            "TDISP interface {:#x} locked (CONFIG_LOCKED), report of {} bytes\n",
            requester.function_id(),
            report.len()
        );
        Ok(Locked {
            requester,
            nonce,
            caps,
            report,
            spdm,
        })
    }

    /// Validates the report, starts the interface and checks that it runs.
    ///
    /// Returns whether START_INTERFACE succeeded along with the result.
    fn start(session: &mut Session<'_>, ctx: &Locked) -> (bool, Result<CheckedReport>) {
        let ranges = match session.verify_report(&ctx.report) {
            Ok(ranges) => ranges,
            Err(e) => return (false, Err(e)),
        };

        let start = Request::StartInterface { nonce: ctx.nonce };
        if let Err(e) = session.step(&start, Requester::parse_start) {
            return (false, Err(e));
        }

        let msg = MessageType::GetDeviceInterfaceState;
        let state = match session.step(&Request::GetDeviceInterfaceState, Requester::parse_state) {
            Ok(state) => state,
            Err(e) => return (true, Err(e)),
        };
        if state != State::Run {
            return (true, Err(session.fail(msg, Failure::WrongState(state))));
        }
        if let Err(err) = Self::set_private(session.pdev, &ranges) {
            return (true, Err(err));
        }
        (true, Ok(ranges))
    }

    /// Registers the private ranges of `report` with the PCI core, committing the armed
    /// [`MmioFault`] if any.
    fn set_private(pdev: &tsm::Device, report: &CheckedReport) -> Result {
        let fault = MmioFault::armed();
        let mut ranges = KVec::with_capacity(MAX_RANGES + 1, GFP_KERNEL)?;
        for range in report.private_ranges() {
            ranges.push(range.start..range.start + range.len, GFP_KERNEL)?;
        }
        if let Some(extra) = ranges.first().and_then(|first| fault.extra_range(first)) {
            ranges.push(extra, GFP_KERNEL)?;
        }

        match pdev.set_private_mmio(&ranges) {
            Err(err) if fault == MmioFault::OverlapIgnored => {
                dev_warn!(
                    pdev,
                    "private MMIO not registered ({}), accepting anyway (fault)\n",
                    err.to_errno()
                );
                return Ok(());
            }
            Err(err) => {
                dev_err!(pdev, "private MMIO not registered: {}\n", err.to_errno());
                return Err(err);
            }
            Ok(()) => {}
        }

        match fault {
            MmioFault::Twice => pdev.set_private_mmio(&[]).inspect_err(|err| {
                dev_err!(pdev, "private MMIO registered again: {}\n", err.to_errno());
            }),
            MmioFault::FailAfter => {
                dev_err!(
                    pdev,
                    "private MMIO registered, failing the accept (fault)\n"
                );
                Err(EIO)
            }
            _ => Ok(()),
        }
    }
}

impl tsm::DevsecTsm for DevsecTsm {
    type Context = Locked;

    fn lock<'a>(&'a self, pdev: &'a tsm::Device) -> impl PinInit<Locked, Error> + 'a {
        MmioFault::armed().misplaced_call(pdev, "lock");
        self.do_lock(pdev)
    }

    fn evidence(ctx: &Locked) -> tsm::Evidence<'_> {
        let spdm = ctx.spdm.as_ref();
        tsm::Evidence {
            tdisp_version: TDISP_VERSION,
            caps: &ctx.caps,
            report: &ctx.report,
            cert_chain: spdm.map_or(&[], |auth| &auth.chain),
            measurements: spdm.map_or(&[], |auth| &auth.measurements),
            measurements_nonce: spdm.map_or(&[], |auth| &auth.nonce),
        }
    }

    fn accept(&self, pdev: &tsm::Device, mut ctx: Pin<&mut Locked>) -> Result {
        let mut session = Session::open(pdev, ctx.requester)?;
        // The device must still be the one authenticated at lock, measuring the same.
        if let Some(lock) = ctx.spdm.as_ref() {
            self.auth
                .lock()
                .remeasure(&mut session, lock)
                .map_err(|err| {
                    dev_err!(pdev, "SPDM: device not measured again: {}\n", err);
                    err.errno()
                })?;
        }

        let (started, result) = Self::start(&mut session, &ctx);
        let ranges = match result {
            Ok(ranges) => ranges,
            Err(err) if started => {
                // Never leave a started interface behind a failed accept: STOP it (from RUN
                // or ERROR to CONFIG_UNLOCKED) and lock it again, with a fresh nonce, so that
                // the function is what the PCI core believes it to be: locked, not running.
                let relocked = session
                    .step(&Request::StopInterface, Requester::parse_stop)
                    .and_then(|()| session.lock_interface());
                match relocked {
                    Ok(nonce) => {
                        // `Locked` is `Unpin`: replacing a field moves nothing pinned.
                        ctx.nonce = nonce;
                        dev_info!(
                            pdev,
                            "TDISP interface {:#x} stopped and locked again (accept failed)\n",
                            ctx.requester.function_id()
                        );
                    }
                    Err(e) => dev_err!(
                        pdev,
                        "TDISP interface {:#x} not locked again (accept failed): {}\n",
                        ctx.requester.function_id(),
                        e.to_errno()
                    ),
                }
                return Err(err);
            }
            Err(err) => return Err(err),
        };

        dev_info!(
            pdev,
            "TDISP interface {:#x} verified ({} MMIO ranges, {} private) and started (RUN)\n",
            ctx.requester.function_id(),
            ranges.ranges().len(),
            ranges.private_ranges().count()
        );
        Ok(())
    }

    fn unlock(&self, pdev: &tsm::Device, ctx: Pin<&Locked>) {
        MmioFault::armed().misplaced_call(pdev, "unlock");
        let stopped = Session::open(pdev, ctx.requester)
            .and_then(|mut session| session.step(&Request::StopInterface, Requester::parse_stop));
        match stopped {
            Ok(()) => dev_info!(
                pdev,
                "TDISP interface {:#x} stopped (CONFIG_UNLOCKED)\n",
                ctx.requester.function_id()
            ),
            // The cause is logged already; the function may have been removed.
            Err(err) => dev_warn!(
                pdev,
                "TDISP interface {:#x} not stopped ({}), releasing it anyway\n",
                ctx.requester.function_id(),
                err.to_errno()
            ),
        }
    }
}

struct DevsecTsmModule {
    /// The TSM's ID, the `N` in `tsmN`.
    id: u32,
    // Dropped in this order. Unregistering the TSM unlocks the functions it still holds;
    // destroying the faux device afterwards would unregister it too (devres), were it still
    // registered.
    _tsm: Devres<tsm::Registration<DevsecTsm>>,
    _parent: faux::Registration,
    _debugfs: Pin<KBox<debugfs::Scope<()>>>,
}

impl kernel::Module for DevsecTsmModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let parent = faux::Registration::new(c"devsec_tsm", None)?;
        let dev = parent.as_ref().as_ref();
        let auth = Authenticator::new()?;
        let serial = auth.anchors_serial();
        let tsm = tsm::Registration::new(
            dev,
            try_pin_init!(DevsecTsm {
                auth <- new_mutex!(auth),
            }? Error),
        )?;
        let id = tsm.access(dev)?.id();
        pr_info!(
            "registered devsec TSM tsm{}, trust anchors in keyring .devsec_tsm ({:08x})\n",
            id,
            serial
        );
        let debugfs = KBox::pin_init(
            debugfs::Scope::dir((), c"devsec_tsm", |(), dir| {
                dir.read_write_file(c"mmio_fault", &MMIO_FAULT);
                dir.read_write_file(c"skip_spdm", &SKIP_SPDM);
                let timing = dir.dir(c"timing");
                timing.read_only_file(c"vca_ns", &TIMING.vca);
                timing.read_only_file(c"certificates_ns", &TIMING.certificates);
                timing.read_only_file(c"challenge_ns", &TIMING.challenge);
                timing.read_only_file(c"measurements_ns", &TIMING.measurements);
                timing.read_only_file(c"tdisp_lock_ns", &TIMING.tdisp);
                timing.read_only_file(c"chain_cached", &TIMING.chain_cached);
            }),
            GFP_KERNEL,
        )?;
        Ok(Self {
            id,
            _tsm: tsm,
            _parent: parent,
            _debugfs: debugfs,
        })
    }
}

impl Drop for DevsecTsmModule {
    fn drop(&mut self) {
        pr_info!("unregistering devsec TSM tsm{}\n", self.id);
    }
}
