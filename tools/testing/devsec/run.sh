#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh: 'make run' -- build the normal flavour, boot it and show the
# confidential device acceptance life cycle as a narrated transcript.

here=$(dirname "$0")
. "$here/common.sh"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -n 9 || die "another 'make test' or 'make run' is using $CACHE; wait for it"

"$here/setup.sh"
"$here/fetch-kernel.sh"
python3 "$here/prepare-tree.py" "$OVERLAY" "$PRISTINE" "$KSRC"
"$here/build.sh" normal
"$here/agent.sh" --build-only || die "devsec-agent does not build"
"$here/mkinitramfs.sh" normal
msg "booting linux-$KVERSION in QEMU (TCG)"
rc=0
"$here/run-vm.sh" normal run 300 || rc=$?
sed -n '/^coco-guest: dmesg begin/q;p' "$BUILD/normal/guest.log" 2>/dev/null |
	grep -v '^coco-guest: userspace'
grep -q '^verdict: PASS' "$BUILD/normal/guest.log" 2>/dev/null || rc=1
exit $rc
