// SPDX-License-Identifier: GPL-2.0

//! Devsec PCI driver sample: a driver that waits for its device to be accepted into the TEE.
//!
//! The driver has an empty ID table, so it only binds where user space asks for it with
//! `driver_override`:
//!
//! ```text
//! echo devsec_pci > /sys/bus/pci/devices/<bdf>/driver_override
//! echo <bdf> > /sys/bus/pci/drivers_probe
//! ```
//!
//! Probe first calls `cc_probe()`: until the device is accepted (`tsm/lock`, `tsm/accept`)
//! that defers the probe with "TEE acceptance pending", before anything touches the device.
//! Once accepted, the PCI core probes the device again; the driver then enables it, logs which
//! pages of BAR0 are private MMIO (`mmio_is_private()`, one digit per page), maps BAR0 if it is
//! one private range as a whole or has no private MMIO at all, and logs that it runs. A BAR0
//! that is partly shared (MSI-X, NON_TEE or unreported pages) or made of several private
//! ranges cannot be requested in one piece, as one mapping cannot be both private and shared;
//! this sample then maps nothing.
//!
//! `/sys/kernel/debug/devsec_pci/probe_attempts` counts calls of probe, deferred ones included.

use kernel::{
    debugfs,
    device::Core,
    driver,
    page::PAGE_SIZE,
    pci,
    prelude::*,
    sync::atomic::{Atomic, Relaxed}, //
};

/// Number of probe calls since the module was loaded.
static PROBE_ATTEMPTS: Atomic<u32> = Atomic::new(0);

struct DevsecPci;

/// State of a bound device.
struct DevsecPciData<'bound> {
    pdev: &'bound pci::Device,
    bar0: Option<pci::Bar<'bound>>,
}

/// Pages of a BAR the private page map shows; the emulated BAR0 has four.
const MAP_PAGES: usize = 64;

/// Which pages of a BAR are private MMIO: one digit per page, `1` for private, for the first
/// [`MAP_PAGES`] pages.
///
/// Built before printing: `mmio_is_private()` may sleep, a `Display` impl runs inside printk.
struct PrivatePages {
    map: [u8; MAP_PAGES],
    len: usize,
}

impl PrivatePages {
    fn new(pdev: &pci::Device, bar: u32) -> Self {
        // CAST: a page is far smaller than the address space.
        let page = PAGE_SIZE as u64;
        let bar_len = pdev.resource_len(bar).unwrap_or(0);
        let mut pages = Self {
            map: [b'0'; MAP_PAGES],
            len: 0,
        };
        let offsets = (0..bar_len).step_by(PAGE_SIZE);
        for (digit, offset) in pages.map.iter_mut().zip(offsets) {
            if pdev.mmio_is_private(bar, offset..offset + page) {
                *digit = b'1';
            }
            pages.len += 1;
        }
        pages
    }

    fn any_private(&self) -> bool {
        self.digits().contains('1')
    }

    fn digits(&self) -> &str {
        // The map holds only ASCII digits.
        core::str::from_utf8(self.map.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

kernel::pci_device_table!(PCI_TABLE, <DevsecPci as pci::Driver>::IdInfo, []);

impl pci::Driver for DevsecPci {
    type IdInfo = ();
    type Data<'bound> = DevsecPciData<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        PROBE_ATTEMPTS.fetch_add(1, Relaxed);

        // Nothing may touch the device before it is accepted into the TEE.
        pdev.as_ref().cc_probe()?;

        pdev.enable_device_mem()?;
        let pages = PrivatePages::new(pdev, 0);
        dev_info!(pdev, "BAR0 private pages: {}\n", pages.digits());
        let len = pdev.resource_len(0)?;
        if pages.any_private() && !pdev.mmio_is_private(0, 0..len) {
            dev_info!(
                pdev,
                "accepted, BAR0 not one private range, not mapped, running\n"
            );
            return Ok(DevsecPciData { pdev, bar0: None });
        }
        let bar0 = pdev.iomap_region(0, c"devsec_pci").inspect_err(|err| {
            dev_err!(pdev, "cannot map BAR0: {}\n", err.to_errno());
        })?;

        dev_info!(pdev, "accepted, BAR0 mapped, running\n");

        Ok(DevsecPciData {
            pdev,
            bar0: Some(bar0),
        })
    }
}

impl Drop for DevsecPciData<'_> {
    fn drop(&mut self) {
        let what = if self.bar0.is_some() {
            "BAR0 unmapped"
        } else {
            "nothing to unmap"
        };
        dev_info!(self.pdev, "unbound, {}\n", what);
    }
}

#[pin_data]
struct DevsecPciModule {
    #[pin]
    _driver: driver::Registration<pci::Adapter<DevsecPci>>,
    #[pin]
    _debugfs: debugfs::Scope<()>,
}

impl kernel::InPlaceModule for DevsecPciModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _debugfs <- debugfs::Scope::dir((), c"devsec_pci", |(), dir| {
                dir.read_only_file(c"probe_attempts", &PROBE_ATTEMPTS);
            }),
            _driver <- driver::Registration::new(c"devsec_pci", module),
        })
    }
}

module! {
    type: DevsecPciModule,
    name: "devsec_pci",
    authors: ["coco-accept developers"],
    description: "Devsec PCI driver sample: waits for TEE acceptance, then maps BAR0",
    license: "GPL",
}
