// SPDX-License-Identifier: GPL-2.0

//! Devsec PF driver sample: an SR-IOV physical function driver whose VFs are TDISP interfaces.
//!
//! Like `devsec_pci`, the driver has an empty ID table and binds only through
//! `driver_override`, and its probe waits for the PF to be accepted into the TEE
//! (`cc_probe()`). Once bound, it enables every virtual function the PF offers
//! (`pci_enable_sriov()`); each VF is a PCI device of its own that can be locked, accepted
//! and bound (for example to `devsec_pci`) like any other function. Unbinding the driver
//! disables SR-IOV, which unbinds the VFs' drivers and removes the VFs, whatever their TDISP
//! state: removing a locked VF unlocks it.
//!
//! With `devsec_bus vfs=N`, every emulated endpoint is such a PF with N VFs.

use kernel::{
    device::Core,
    driver,
    pci,
    prelude::*, //
};

struct DevsecPf;

/// State of a bound PF.
struct DevsecPfData<'bound> {
    pdev: &'bound pci::Device,
    vfs: u16,
}

kernel::pci_device_table!(PCI_TABLE, <DevsecPf as pci::Driver>::IdInfo, []);

impl pci::Driver for DevsecPf {
    type IdInfo = ();
    type Data<'bound> = DevsecPfData<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        // Nothing may touch the device before it is accepted into the TEE.
        pdev.as_ref().cc_probe()?;

        let Some(total) = pdev.sriov_get_totalvfs() else {
            dev_err!(pdev, "no SR-IOV virtual functions\n");
            return Err(ENODEV);
        };
        pdev.enable_sriov(total).inspect_err(|err| {
            dev_err!(
                pdev,
                "cannot enable {} VFs: {}\n",
                total.get(),
                err.to_errno()
            );
        })?;
        dev_info!(pdev, "accepted, {} VFs enabled\n", total.get());

        Ok(DevsecPfData {
            pdev,
            vfs: total.get(),
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, _this: Pin<&Self::Data<'bound>>) {
        // Removes every VF, unbinding its driver first.
        pdev.disable_sriov();
    }
}

impl Drop for DevsecPfData<'_> {
    fn drop(&mut self) {
        dev_info!(self.pdev, "unbound, {} VFs disabled\n", self.vfs);
    }
}

#[pin_data]
struct DevsecPfModule {
    #[pin]
    _driver: driver::Registration<pci::Adapter<DevsecPf>>,
}

impl kernel::InPlaceModule for DevsecPfModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _driver <- driver::Registration::new(c"devsec_pf", module),
        })
    }
}

module! {
    type: DevsecPfModule,
    name: "devsec_pf",
    authors: ["coco-accept developers"],
    description: "Devsec PF driver sample: waits for TEE acceptance, then enables SR-IOV",
    license: "GPL",
}
