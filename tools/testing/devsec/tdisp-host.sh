#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tdisp-host.sh: the TDISP library (samples/devsec/tdisp/) and the SPDM library
# (samples/devsec/spdm/) on the host, as the crate in
# tools/testing/devsec/tdisp-host/ builds them: every KUnit case of
# samples/devsec/tdisp_test/ and samples/devsec/spdm_test/ as a cargo test, a
# short seeded fuzzing run of every fuzz target (tdisp-fuzz-quick, stable
# toolchain, TDISP_FUZZ_SECONDS per target, default 6), clippy with warnings as
# errors and rustfmt. KTAP on stdout, one point per test, per fuzz target and
# per check.

. "$(dirname "$0")/common.sh"
set +e

src=$OVERLAY/tools/testing/devsec/tdisp-host
export CARGO_TARGET_DIR=$CACHE/tdisp-host/target
log=$CACHE/tdisp-host/log
mkdir -p "$CARGO_TARGET_DIR"
cd "$src" || die "no $src"


# One point per KUnit case, named suite.case as in the guest's KTAP:
# "test suites::responder::tests::NAME ... ok" is devsec_tdisp_responder.NAME,
# "test spdm_suites::responder::tests::NAME ... ok" devsec_spdm_responder.NAME.
cargo test --quiet --locked --no-fail-fast -- --format=pretty >"$log.test" 2>&1
rc=$?
while read -r lib suite name status; do
	case $status in
	ok) point 0 "devsec_${lib}_$suite.$name" ;;
	*) point 1 "devsec_${lib}_$suite.$name" "$log.test" ;;
	esac
done < <(sed -n -e 's/^test suites::\([a-z]*\)::tests::\(.*\) \.\.\. \(ok\|FAILED\)$/tdisp \1 \2 \3/p' \
	-e 's/^test spdm_suites::\([a-z]*\)::tests::\(.*\) \.\.\. \(ok\|FAILED\)$/spdm \1 \2 \3/p' "$log.test")
# A failure to build the tests, or a crash, shows here.
point $rc cargo_test "$log.test"

cargo build --quiet --locked --release --bin tdisp-fuzz-quick >"$log.fuzz" 2>&1
rc=$?
point $rc fuzz_quick_build "$log.fuzz"
if [ $rc = 0 ]; then
	"$CARGO_TARGET_DIR/release/tdisp-fuzz-quick" "${TDISP_FUZZ_SECONDS:-6}" >>"$log.fuzz" 2>&1
	rc=$?
	while read -r status name; do
		# The runner's own comment lines carry the figures; keep them.
		while IFS= read -r l; do KTAP_LINES+=("$l"); done < <(grep "^# $name:" "$log.fuzz")
		point "$([ "$status" = ok ] && echo 0 || echo 1)" "$name"
	done < <(sed -n 's/^\(ok\|not ok\) [0-9]* \(fuzz_[a-z]*\)$/\1 \2/p' "$log.fuzz" | sed 's/^not ok/fail/')
	# A runner that died before printing its points (an abort, a crash) fails here.
	point $rc fuzz_quick_run "$log.fuzz"
fi

cargo clippy --quiet --locked --all-targets -- -D warnings >"$log.clippy" 2>&1
point $? clippy_clean "$log.clippy"
cargo fmt --check >"$log.fmt" 2>&1
point $? rustfmt_clean "$log.fmt"

ktap_print
