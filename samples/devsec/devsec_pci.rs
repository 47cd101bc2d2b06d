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
//! Once accepted, the PCI core probes the device again; the driver then enables it, maps BAR0
//! and logs that it runs.
//!
//! `/sys/kernel/debug/devsec_pci/probe_attempts` counts calls of probe, deferred ones included.

use kernel::{
    debugfs,
    device::Core,
    driver,
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
    _bar0: pci::Bar<'bound>,
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
        let bar0 = pdev.iomap_region(0, c"devsec_pci").inspect_err(|err| {
            dev_err!(pdev, "cannot map BAR0: {}\n", err.to_errno());
        })?;

        dev_info!(pdev, "accepted, BAR0 mapped, running\n");

        Ok(DevsecPciData { pdev, _bar0: bar0 })
    }
}

impl Drop for DevsecPciData<'_> {
    fn drop(&mut self) {
        dev_info!(self.pdev, "unbound, BAR0 unmapped\n");
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
