#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mkinitramfs.sh FLAVOUR: pack the guest userspace for one build flavour:
# static busybox and bash, our /init, the guest scripts with lib.sh, and the
# flavour's modules with depmod's indexes so that modprobe works in the guest,
# and the SPDM keys and certificates of the emulated devices (spdm-keys.sh).

. "$(dirname "$0")/common.sh"

flavour=${1:?usage: mkinitramfs.sh FLAVOUR}
out=$BUILD/$flavour
here=$OVERLAY/tools/testing/devsec
stage=$out/initramfs.d
img=$out/initramfs.cpio

[ -d "$out/modroot/lib/modules" ] || die "no modules installed for '$flavour'; build first"
command -v busybox >/dev/null || die "busybox-static is not installed (run make setup)"

rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,root,devsec,lib}
cp /bin/busybox "$stage/bin/busybox"
cp "$(command -v bash-static || echo /bin/bash-static)" "$stage/bin/bash"
ln -s bash "$stage/bin/sh.bash"
install -m 0755 "$here/init" "$stage/init"
# The guest scripts (/init runs one of them) and the helpers they source.
install -m 0755 "$here"/{devsec,demo,bench-guest}.sh "$stage/devsec/"
install -m 0644 "$here/lib.sh" "$stage/devsec/"
# The acceptance agent (built by agent.sh) and the guest suite's policies.
if [ -x "$CACHE/agent/devsec-agent" ]; then
	install -m 0755 "$CACHE/agent/devsec-agent" "$stage/bin/devsec-agent"
fi
mkdir -p "$stage/devsec/policies"
install -m 0644 "$here"/policies/*.toml "$stage/devsec/policies/"
shopt -s nullglob
for t in "$here"/policies/*.toml.in; do install -m 0644 "$t" "$stage/devsec/policies/"; done
shopt -u nullglob
# The SPDM identities of the endpoints (firmware for devsec_bus) and the
# roots: the guest suite adds root.der to the TSM's trust anchors.
"$here/spdm-keys.sh" "$BUILD/spdm"
mkdir -p "$stage/lib/firmware" "$stage/devsec/spdm"
cp -a "$BUILD/spdm/fw/devsec" "$stage/lib/firmware/"
install -m 0644 "$BUILD/spdm"/{root,untrusted-root}.der "$stage/devsec/spdm/"
cp -a "$out/modroot/lib/modules" "$stage/lib/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"

(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --quiet -R 0:0) >"$img.tmp"
mv "$img.tmp" "$img"
