#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# agent.sh [--build-only]: build devsec-agent (tools/devsec-agent) as a
# static binary for the guest and run its host checks: cargo test, clippy
# with warnings as errors, rustfmt. KTAP on stdout, one point per cargo test
# and per check. The binary is left in $CACHE/agent/ for mkinitramfs.sh.

. "$(dirname "$0")/common.sh"
set +e

src=$OVERLAY/tools/devsec-agent
export CARGO_TARGET_DIR=$CACHE/agent
target=x86_64-unknown-linux-gnu
log=$CARGO_TARGET_DIR/log
mkdir -p "$CARGO_TARGET_DIR"
cd "$src" || die "no $src"

# The guest has no libc: link statically (glibc, no NSS use in the agent).
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release \
	--target "$target" >"$log.build" 2>&1
rc=$?
bin=$CARGO_TARGET_DIR/$target/release/devsec-agent
# No shared library needed, not even libc.
if [ $rc = 0 ] && "llvm-readelf$LLVM_SUFFIX" -d "$bin" | grep -q NEEDED; then
	echo "not statically linked:" >>"$log.build"
	"llvm-readelf$LLVM_SUFFIX" -d "$bin" | grep NEEDED >>"$log.build"
	rc=1
fi
point $rc static_build "$log.build"
[ $rc = 0 ] && cp "$bin" "$CARGO_TARGET_DIR/devsec-agent"
if [ "${1:-}" = --build-only ]; then
	[ $rc = 0 ] || tail -n 20 "$log.build" >&2
	exit $rc
fi

# One point per test of every test binary ("test NAME ... ok|FAILED|ignored").
cargo test --quiet --locked --no-fail-fast -- --format=pretty >"$log.test" 2>&1
rc=$?
while read -r name status; do
	case $status in
	ok) point 0 "$name" ;;
	ignored) point_skip "$name" ignored ;;
	*) point 1 "$name" "$log.test" ;;
	esac
done < <(sed -n 's/^test \(.*\) \.\.\. \(ok\|FAILED\|ignored\)$/\1 \2/p' "$log.test")
# A failure to build the tests, or a crash, shows here.
point $rc cargo_test "$log.test"

cargo clippy --quiet --locked --all-targets -- -D warnings >"$log.clippy" 2>&1
point $? clippy_clean "$log.clippy"
cargo fmt --check >"$log.fmt" 2>&1
point $? rustfmt_clean "$log.fmt"

ktap_print
