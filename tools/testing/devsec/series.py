#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Export the overlay as a git format-patch series on the pinned base.

Usage: series.py OVERLAY PRISTINE WORKDIR OUTDIR

WORKDIR holds a git repository of the pristine tree (created once, then
reused); the series is rebuilt on a fresh branch each time.  COMMITS below
says which patches and overlay files make up each commit; every patch in
patches/series and every overlay file must land in exactly one commit, so
nothing is silently left out of the series.
"""

import fnmatch
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
prep = __import__("prepare-tree")

BASE_MSG = "Linux 7.3.4 (Debian linux-source-7.3 7.3.4-1~bpo13+1)"

# (subject, body, patch globs, overlay file globs) in series order.  A None
# subject takes subject and body from the first patch's header.
COMMITS = [
    (None, None, ["pci-ide-*"], []),
    (None, None, ["objtool-*"], []),
    # Before the acceptance commit, whose coco.rs calls it; it applies on
    # either side of it (patches/series lists it after).
    (None, None, ["driver-core-park-*"], []),
    ("driver core: add confidential device acceptance",
     """Confidential guests (TDX, SEV-SNP, CCA) may only let a device reach
private memory, or map its MMIO encrypted, once the device has been
verified and accepted into the guest's TEE. Today every bus would have to
invent its own flag for that, and DMA/ioremap code could not ask.

Record acceptance in one bus-neutral place: a cc_accepted bit next to
'dead' in struct device_private (same byte, so no growth; every writer of
that byte holds the device lock), set and cleared by bus code with
device_cc_accept()/device_cc_reject() only while no driver is bound,
queried by built-in subsystems with device_cc_accepted(), and awaited by
drivers with device_cc_probe(), which defers probe with the reason "TEE
acceptance pending". Only device_cc_probe() is exported to modules.

The implementation is Rust (#[export] checks each signature against the
prototype in device.h). A KUnit suite exercises it on a real platform
device and driver.""",
     ["driver-core-confidential-*"], ["drivers/base/coco.rs", "drivers/base/test/coco_test.rs",
                  "drivers/base/test/coco.kunitconfig"]),
    ("rust: device: add cc_probe() and cc_accepted()",
     """Rust drivers need the same wait-for-acceptance step as C drivers.
Offer it on Device<Core>, so the type proves the call happens inside a bus
callback with the device lock held, and offer the read-only query on any
Device. Accepting and rejecting stay with bus code.""",
     ["rust-device-*"], ["rust/kernel/device/coco.rs"]),
    (None, None, ["pci-tsm-devsec-accept-op*"], []),
    (None, None, ["pci-tsm-devsec-index-*"], []),
    (None, None, ["pci-tsm-devsec-lock-*"], []),
    (None, None, ["pci-tsm-devsec-accept.patch"], []),
    (None, None, ["pci-tsm-devsec-dsm-*"], []),
    (None, None, ["pci-tsm-devsec-evidence*"], []),
    (None, None, ["tsm-*"], []),
    (None, None, ["resource-iores-desc-*"], []),
    (None, None, ["pci-tsm-devsec-private-mmio*"], []),
    (None, None, ["pci-tsm-devsec-spdm-evidence*"], []),
    (None, None, ["rust-bindings-*"], []),
    (None, None, ["rust-sync-*"], ["rust/kernel/sync/lock/raw_spinlock.rs"]),
    (None, None, ["rust-pci-host-*"], ["rust/kernel/pci/host.rs"]),
    (None, None, ["rust-pci-doe-*"], ["rust/kernel/pci/doe.rs", "rust/kernel/pci/tsm.rs"]),
    (None, None, ["rust-pci-sriov-*"], []),
    (None, None, ["rust-crypto-*"], ["rust/helpers/crypto.c", "rust/kernel/crypto.rs"]),
    (None, None, ["rust-key-*"], ["rust/helpers/key.c", "rust/kernel/key.rs"]),
    ("samples: devsec: emulated TDISP device, devsec TSM and driver",
     """There is no TDISP hardware on a developer's desk and QEMU has no TDISP
device model. Add Rust samples that provide one inside the guest kernel:
an emulated PCI host bridge whose endpoints speak TDISP over DOE, a devsec
TSM that locks, validates and starts them, and a PCI driver that waits for
acceptance. The TDISP codec, responder and requester are a small safe Rust
library in samples/devsec/tdisp/ whose files the bus and the TSM include
as they need them, with KUnit suites per part.

Simplification: TDISP travels in SPDM VENDOR_DEFINED messages over DOE
without an SPDM secure session (no keys, no certificates).""",
     ["samples-*"], ["samples/devsec/*"]),
    ("selftests: devsec: guest test suite for confidential device acceptance",
     """Exercise the life cycle, every bad input of the sysfs interface, the
fault injection of the sample, module load orders, permissions,
concurrency and scale from inside a guest, reporting KTAP.""",
     [], ["tools/testing/devsec/devsec.sh", "tools/testing/devsec/lib.sh"]),
    ("docs: driver-api: document confidential device acceptance",
     """Explain what acceptance is and why it only happens with no driver
bound, define the terms once, and document the C and Rust API, the locking
rules, the sysfs interface and the sample; add a MAINTAINERS entry.""",
     ["docs-*"], ["Documentation/driver-api/*"]),
]

# Overlay files and patches that are workbench tooling, not kernel changes:
# the test scripts, the benchmark helpers with the patch that builds them
# into the bench kernel, and the userspace acceptance agent (a project of its
# own, built with cargo).
NOT_UPSTREAM = ["tools/testing/devsec/*", "tools-testing-devsec-*", "tools/devsec-agent/*"]

# Sample files that no Kbuild file builds yet, only the host crate
# (tools/testing/devsec/tdisp-host). None at the moment.
HOST_ONLY = []


def run(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, **kw)


def git(repo, *args, **kw):
    return run(["git", "-C", repo, *args], cwd=repo, **kw)


def main():
    overlay, pristine, work, outdir = sys.argv[1:5]
    repo = os.path.join(work, "linux")
    if not os.path.isfile(os.path.join(repo, ".coco-base")):
        print("==> creating the base repository (once)", file=sys.stderr)
        shutil.rmtree(repo, ignore_errors=True)
        os.makedirs(repo)
        run(["cp", "-a", os.path.join(os.path.realpath(pristine), "."), repo], cwd=work)
        os.remove(os.path.join(repo, ".complete"))
        git(repo, "init", "-q", "-b", "base")
        git(repo, "add", "-A", "-f", ".")  # Debian's .gitignore ignores the top level
        git(repo, "-c", "user.name=coco-accept", "-c", "user.email=coco@invalid",
            "commit", "-q", "-m", BASE_MSG)
        git(repo, "tag", "-f", "v7.3.4-debian")
        open(os.path.join(repo, ".coco-base"), "w").close()
    git(repo, "checkout", "-q", "-f", "base")
    git(repo, "reset", "-q", "--hard", "v7.3.4-debian")
    git(repo, "clean", "-q", "-fdx", "-e", ".coco-base")
    git(repo, "checkout", "-q", "-B", "coco-accept", "v7.3.4-debian")

    with open(os.path.join(overlay, "patches", "series")) as f:
        series = [l.split("#")[0].strip() for l in f if l.split("#")[0].strip()]
    files = sorted(f for f in prep.overlay_files(overlay)
                   if not any(fnmatch.fnmatch(f, g) for g in HOST_ONLY))
    used_p, used_f = set(), set()
    for subject, body, pglobs, fglobs in COMMITS:
        patches = [p for p in series if p not in used_p
                   and any(fnmatch.fnmatch(p, g) for g in pglobs)]
        ofiles = [f for f in files if f not in used_f
                  and any(fnmatch.fnmatch(f, g) for g in fglobs)]
        if not patches and not ofiles:
            continue
        for p in patches:
            git(repo, "apply", "--index", os.path.join(overlay, "patches", p))
        for rel in ofiles:
            dst = os.path.join(repo, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(overlay, rel), dst)
            git(repo, "add", "-f", rel)
        used_p.update(patches)
        used_f.update(ofiles)
        if subject is None:
            with open(os.path.join(overlay, "patches", patches[0])) as f:
                head = f.read().split("\n---\n", 1)[0]
            subject, _, body = head.partition("\n\n")
            subject = subject.removeprefix("Subject:").strip()
        git(repo, "commit", "-q", "-s", "-m", subject + "\n\n" + body.strip())

    left_p = [p for p in series if p not in used_p
              and not any(fnmatch.fnmatch(p, g) for g in NOT_UPSTREAM)]
    left_f = [f for f in files if f not in used_f
              and not any(fnmatch.fnmatch(f, g) for g in NOT_UPSTREAM)]
    if left_p or left_f:
        print("error: not assigned to any commit of the series: "
              + ", ".join(left_p + left_f), file=sys.stderr)
        sys.exit(1)

    shutil.rmtree(outdir, ignore_errors=True)
    git(repo, "format-patch", "-q", "--cover-letter", "-o", outdir, "v7.3.4-debian..coco-accept")
    cover = sorted(os.listdir(outdir))[0]
    path = os.path.join(outdir, cover)
    with open(path) as f:
        text = f.read()
    with open(os.path.join(overlay, "patches", "cover-letter.txt")) as f:
        subject, _, blurb = f.read().partition("\n\n")
    text = text.replace("*** SUBJECT HERE ***", subject.strip())
    text = text.replace("*** BLURB HERE ***", blurb.strip())
    with open(path, "w") as f:
        f.write(text)
    print(f"==> {len(os.listdir(outdir)) - 1} patches + cover letter in {outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
