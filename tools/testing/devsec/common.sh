# SPDX-License-Identifier: GPL-2.0
#
# Shared settings for the coco-accept workbench scripts.  Sourced, not run.

set -euo pipefail

# Repository root (the overlay).
OVERLAY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

# Pinned base, see DESIGN.md section 2.
KPKG=linux-source-7.3
KPKG_VERSION=7.3.4-1~bpo13+1
KPKG_SUITE=trixie-backports
KPKG_DEB_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
KPKG_TAR_SHA256=76df1affb19f24926949369be1d74b60071c963c598ce8780bddd4bbf0fc3bc4
KVERSION=7.3.4

# Everything big lives outside the repository so that a fresh clone reuses a
# warm build.
CACHE=${COCO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coco-accept}
DL=$CACHE/dl
PRISTINE=$CACHE/pristine/linux-$KVERSION
KSRC=$CACHE/src/linux-$KVERSION
BUILD=$CACHE/build

LLVM_SUFFIX=-19
JOBS=${JOBS:-$(nproc)}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export PATH=$HOME/.cargo/bin:$PATH

msg() { printf '==> %s\n' "$*" >&2; }

# KTAP of host checks, collected and printed at the end (agent.sh,
# tdisp-host.sh): point STATUS NAME [DIAG FILE] records one test point, the
# last lines of DIAG FILE as diagnostics if it failed; point_skip NAME REASON
# records a skipped one; ktap_print prints all.
KTAP_LINES=()
KTAP_N=0
point() {
	KTAP_N=$((KTAP_N + 1))
	if [ "$1" = 0 ]; then
		KTAP_LINES+=("ok $KTAP_N $2")
	else
		KTAP_LINES+=("not ok $KTAP_N $2")
		[ -n "${3:-}" ] && while IFS= read -r l; do KTAP_LINES+=("# $l"); done < <(tail -n 15 "$3")
	fi
}
point_skip() { # point_skip NAME REASON
	KTAP_N=$((KTAP_N + 1))
	KTAP_LINES+=("ok $KTAP_N $1 # SKIP $2")
}
ktap_print() {
	echo "KTAP version 1"
	echo "1..$KTAP_N"
	printf '%s\n' "${KTAP_LINES[@]}"
}
die() {
	printf '\nerror: %s\n' "$*" >&2
	exit 1
}

# kmake FLAVOUR ARGS...: run the kernel's make for one build flavour.
kmake() {
	local flavour=$1
	shift
	make -C "$KSRC" O="$BUILD/$flavour" LLVM="$LLVM_SUFFIX" -j"$JOBS" -s "$@"
}
