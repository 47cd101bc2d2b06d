// SPDX-License-Identifier: GPL-2.0

//! devsec-agent: the userspace acceptance agent for TDISP devices in confidential VMs.
//!
//! A PCI function may do DMA to private memory only once a TSM locked it through TDISP
//! and the guest accepted it. The kernel exposes the lock, the evidence and a
//! generation-bound accept in sysfs (`/sys/bus/pci/devices/<BDF>/tsm/`); this crate owns
//! the decision: it matches a policy rule, locks, reads and verifies the evidence, accepts
//! exactly the evidence it verified and lets the driver bind.
//!
//! The library half exists so the integration tests can drive the decision logic against
//! a simulated kernel; the binary in `main.rs` is a thin CLI over it.

pub mod agent;
pub mod evidence;
pub mod hotplug;
pub mod keys;
pub mod pci;
pub mod policy;
pub mod sysfs;
pub mod tdisp;
