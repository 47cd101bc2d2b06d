#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check.sh: host-side static checks of the overlay against the built normal
# flavour, as KTAP on stdout (one test point per check).  Build warnings,
# formatting, the export set, the codegen of device_cc_accepted() and the
# modpost refusal of non-exported entry points.

. "$(dirname "$0")/common.sh"
set +e

out=$BUILD/normal
n=0
lines=()
point() { # point STATUS NAME [DIAG...]
	local st=$1 name=$2
	shift 2
	n=$((n + 1))
	if [ "$st" = 0 ]; then
		lines+=("ok $n $name")
	else
		lines+=("not ok $n $name")
		local d
		for d in "$@"; do lines+=("# $d"); done
	fi
}

cd "$OVERLAY"
# Kernel Rust only: the userspace agent follows cargo fmt (see agent.sh).
rs_files=$(git ls-files '*.rs' ':!tools/devsec-agent' 2>/dev/null ||
	find drivers rust samples -name '*.rs')
sh_files=$(git ls-files 'tools/testing/devsec/*.sh' '.ci/run' 'tools/testing/devsec/init' \
	2>/dev/null)

# rustfmt with the tree's configuration.
r=$(rustfmt --config-path "$KSRC/.rustfmt.toml" --edition 2021 --check $rs_files 2>&1)
point $? rustfmt_clean "$(echo "$r" | grep '^Diff in' | head -5)"

# rustfmt leaves lines it cannot break; the kernel's limit is 100 columns.
long=$(awk 'length > 100 { print FILENAME ":" FNR }' $rs_files | head -5)
point $([ -z "$long" ]; echo $?) rust_lines_within_100_columns "$long"

# Shell scripts parse (and pass shellcheck where it is installed).
bad=""
for f in $sh_files; do bash -n "$f" 2>/dev/null || bad+=" $f"; done
point $([ -z "$bad" ]; echo $?) shell_syntax "bad:$bad"

# No compiler or clippy warning from our files in the last build.
ours=$(echo "$rs_files" | sed 's/[.]rs$//' | paste -sd'|')
w=$(grep -A3 -E '^(warning|error)' "$out/build.log" | grep -E "($ours)[.]rs" | head -5)
ours_c='drivers/base/coco|drivers/pci/tsm|samples/devsec|tools/testing/devsec/bench'
w2=$(grep -E "($ours_c)[^ ]*: warning" "$out/build.log" | head -5)
point $([ -z "$w$w2" ]; echo $?) no_build_warnings_from_overlay "$w" "$w2"

# rustdoc of the kernel crate (our API docs and doc links) without warnings
# from our files.  It regenerates the documentation of core and alloc every
# time (about a minute), so its result is kept, keyed on everything it reads:
# the Rust sources of the prepared tree, the configuration and the toolchain.
# CLIPPY=1 as in build.sh, or the next build would recompile the Rust crates.
key=$({ cd "$KSRC" && find rust -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	sha256sum "$out/.config"; rustdoc --version; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$out/rustdoc.key" 2>/dev/null)" = "$key" ] && [ -f "$out/rustdoc.rc" ]; then
	rc=$(cat "$out/rustdoc.rc")
else
	rm -f "$out/rustdoc.key"
	kmake normal CLIPPY=1 rustdoc >"$out/rustdoc.log" 2>&1
	rc=$?
	echo "$rc" >"$out/rustdoc.rc"
	echo "$key" >"$out/rustdoc.key"
fi
w=$(grep -A4 -E '^(warning|error)' "$out/rustdoc.log" | grep -E "($ours)[.]rs" | head -5)
point $([ $rc = 0 ] && [ -z "$w" ]; echo $?) rustdoc_clean "rc $rc" "$w"

# kernel-doc of the C API.
kd=$("$KSRC/scripts/kernel-doc" -none -Wall "$KSRC/include/linux/device.h" 2>&1 |
	grep -i 'device_cc' | head -5)
point $([ -z "$kd" ]; echo $?) kernel_doc_device_h "$kd"

# The driver-api page builds with Sphinx (Debian's, through the kernel's
# wrapper) without warnings, the kernel-doc it pulls in included.
doc=$BUILD/htmldocs
rm -rf "$doc"
make -C "$KSRC" O="$doc" -s PYTHON3=/usr/bin/python3 SPHINXBUILD=/usr/bin/sphinx-build \
	SPHINXDIRS=driver-api/coco htmldocs >"$BUILD/htmldocs.log" 2>&1
rc=$?
w=$(grep -E 'WARNING|ERROR|CRITICAL' "$BUILD/htmldocs.log" | grep -v 'dot(1) not found' | head -5)
page=$doc/Documentation/output/driver-api/coco/device-acceptance.html
point $([ $rc = 0 ] && [ -z "$w" ] && grep -q 'device_cc_probe' "$page" 2>/dev/null; echo $?) \
	htmldocs_driver_api_coco "rc $rc" "$w"

# Export set: exactly device_cc_probe among the four.
exp=$(awk '$2 ~ /^device_cc_/ {print $2}' "$out/Module.symvers" | sort | paste -sd' ')
point $([ "$exp" = device_cc_probe ]; echo $?) export_set_is_device_cc_probe "exported: '$exp'"

# device_cc_accepted() is straight-line: no call, no jump out of the function.
dis=$(llvm-objdump$LLVM_SUFFIX -d --no-show-raw-insn --disassemble-symbols=device_cc_accepted \
	"$out/drivers/base/coco.o" 2>&1 | grep -E '^\s+[0-9a-f]+:')
calls=$(echo "$dis" | grep -Ec '\s(call|callq|jmp|jmpq)\s+[^0-9]|__x86_indirect|\scall')
ninsn=$(echo "$dis" | grep -c .)
point $([ -n "$dis" ] && [ "$calls" = 0 ]; echo $?) device_cc_accepted_has_no_call \
	"$ninsn instructions, $calls calls/jumps out" "$(echo "$dis" | head -12)"
echo "$ninsn" >"$out/device_cc_accepted.insns"

# modpost must refuse a module that uses the bus-only entry points, and
# accept one that uses device_cc_probe() (the control).
mod=$(mktemp -d)
trap 'rm -rf "$mod"' EXIT
for sym in device_cc_probe device_cc_accept device_cc_reject device_cc_accepted; do
	mkdir -p "$mod/$sym"
	cat >"$mod/$sym/m.c" <<C
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/device.h>
static int __init m_init(void) { return $sym(NULL) ? 0 : 0; }
module_init(m_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("link check");
C
	echo 'obj-m := m.o' >"$mod/$sym/Kbuild"
	kmake normal M="$mod/$sym" modules >"$mod/$sym/log" 2>&1
	rc=$?
	if [ $sym = device_cc_probe ]; then
		point $rc modpost_allows_device_cc_probe "$(tail -3 "$mod/$sym/log")"
	else
		grep -q "symbol '$sym' undefined" "$mod/$sym/log"
		ok=$?
		[ $rc != 0 ] || ok=1
		point $ok "modpost_refuses_${sym}" "$(tail -3 "$mod/$sym/log")"
	fi
done

# The same policy for Rust modules: Device::cc_probe() links, Device::cc_accepted() does not
# (it is always inlined, so the module references the unexported device_cc_accepted()).
for call in cc_probe cc_accepted; do
	d=$mod/rust_$call
	mkdir -p "$d"
	if [ $call = cc_probe ]; then
		sig='for<'"'"'a, '"'"'b> fn(&'"'"'a Device<Core<'"'"'b>>) -> Result'
		body='|dev| dev.cc_probe()'
	else
		sig='fn(&Device) -> bool'
		body='|dev| dev.cc_accepted()'
	fi
	cat >"$d/m.rs" <<RS
// SPDX-License-Identifier: GPL-2.0
//! Link check.
#![allow(unused_imports)]
use kernel::device::{Core, Device};
use kernel::prelude::*;
module! { type: M, name: "m", authors: ["check"], description: "link check", license: "GPL", }
struct M;
#[used]
static F: $sig = $body;
impl kernel::Module for M {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(M)
    }
}
RS
	echo 'obj-m := m.o' >"$d/Kbuild"
	kmake normal M="$d" modules >"$d/log" 2>&1
	rc=$?
	if [ $call = cc_probe ]; then
		point $rc modpost_allows_rust_cc_probe "$(tail -3 "$d/log")"
	else
		grep -q "symbol 'device_cc_accepted' undefined" "$d/log"
		ok=$?
		[ $rc != 0 ] || ok=1
		point $ok modpost_refuses_rust_cc_accepted "$(tail -3 "$d/log")"
	fi
done

echo "KTAP version 1"
echo "1..$n"
printf '%s\n' "${lines[@]}"
