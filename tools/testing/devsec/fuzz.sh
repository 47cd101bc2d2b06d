#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fuzz.sh: 'make fuzz': coverage-guided fuzzing (libFuzzer) of the TDISP
# library, FUZZ_SECONDS (default 60) per target, targets one after another.
#
# With a nightly toolchain and cargo-fuzz installed, 'cargo +nightly fuzz
# run' builds and runs the targets (its defaults: AddressSanitizer, coverage).
# Otherwise the stable toolchain builds the same targets with libFuzzer's
# coverage instrumentation passed by hand (no sanitizer: the library is safe
# Rust, and overflow and debug assertions stay on).  The corpus starts from
# the seeds of tdisp-fuzz-quick and grows in $CACHE/tdisp-host/corpus/;
# crashes land in $CACHE/tdisp-host/artifacts/.  Prints one line per target
# with executions, executions per second and corpus size; fails if any
# target found a crash.

. "$(dirname "$0")/common.sh"

src=$OVERLAY/tools/testing/devsec/tdisp-host
work=$CACHE/tdisp-host
secs=${FUZZ_SECONDS:-60}
targets=(responder requester roundtrip spdm)
mkdir -p "$work/artifacts" "$work/log"
cd "$src" || die "no $src"

CARGO_TARGET_DIR=$work/target cargo build --quiet --locked --release \
	--bin tdisp-fuzz-quick || die "tdisp-fuzz-quick does not build"
"$work/target/release/tdisp-fuzz-quick" --seeds "$work/corpus" ||
	die "cannot write the seed corpus"

if cargo +nightly fuzz --version >/dev/null 2>&1; then
	how="cargo-fuzz, nightly"
	run_target() {
		cargo +nightly fuzz run --fuzz-dir fuzz --target-dir "$work/fuzz-target-nightly" \
			"$1" "$work/corpus/$1" -- \
			-max_total_time="$secs" -print_final_stats=1 \
			-artifact_prefix="$work/artifacts/$1-"
	}
else
	how="libFuzzer, $(rustc --version | cut -d' ' -f1-2), coverage flags by hand"
	# Instrument the targets' code, not build scripts: hence --target.
	host=$(rustc -vV | sed -n 's/^host: //p')
	flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
		-Cllvm-args=-sanitizer-coverage-inline-8bit-counters
		-Cllvm-args=-sanitizer-coverage-pc-table
		-Cllvm-args=-sanitizer-coverage-trace-compares
		--cfg fuzzing -Cdebug-assertions -Coverflow-checks)
	RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR=$work/fuzz-target cargo build \
		--quiet --locked --release -p devsec-tdisp-fuzz --target "$host" ||
		die "the fuzz targets do not build"
	run_target() {
		"$work/fuzz-target/$host/release/$1" "$work/corpus/$1" \
			-max_total_time="$secs" -print_final_stats=1 \
			-artifact_prefix="$work/artifacts/$1-"
	}
fi

msg "fuzzing ${targets[*]} for $secs s each ($how)"
failed=0
for t in "${targets[@]}"; do
	run_target "$t" >"$work/log/$t" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log/$t")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log/$t")
	units=$(find "$work/corpus/$t" -type f | wc -l)
	if [ $rc = 0 ]; then
		result=clean
	else
		result="FAILED (rc $rc, see $work/log/$t)"
		failed=1
		grep -E '^(==|thread|panicked|SUMMARY)' "$work/log/$t" | head -n 5 >&2
	fi
	printf '%-10s %12s executions %8s/s  corpus %5s  %s\n' \
		"$t" "${execs:-?}" "${rate:-?}" "$units" "$result"
done
exit $failed
