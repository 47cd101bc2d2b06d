#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-guest.sh: the guest half of 'make bench' (coco.mode=bench).
#
# Measures, on the devsec_bus sample's emulated TDISP endpoints:
#   latency   lock, accept (write until devsec_pci is bound) and unlock of
#             one endpoint, over CYCLES cycles, with SPDM authentication
#             ("plain", the lock by part) and without ("nospdm");
#   spdm      lock+accept with SPDM of all N endpoints, N = 1, 16, 64, all
#             N deferred first;
#   scale     lock+accept of all N endpoints, N = 1, 16, 64, 256, with
#             all N deferred first and with one deferred at a time;
#   deferred  lock+accept at N = 1 and 64 with and without 256 unrelated
#             platform devices waiting in the deferred-probe list;
#   hotpath   device_cc_accepted() against a C baseline (built-in helper,
#             debugfs devsec_bench/hotpath).
#
# With coco.bench=loaded on the command line (the host runs a CPU hog
# meanwhile) only the scale and deferred (N = 1) measurements run.
#
# scale, deferred and the "nospdm" latency measure the driver core and the
# PCI/TSM core, not device authentication: their endpoints take TDISP
# without SPDM (devsec_bus spdm=0) and the TSM does not authenticate
# (devsec_tsm skip_spdm), as the emulated device's RSA-3072 signatures,
# computed on the guest's own CPUs, would otherwise dominate every figure.
#
# Timing uses bash's $EPOCHREALTIME, and nothing inside a timed window
# forks: the sysfs writes are printf builtins with redirections.  Every
# step's result is verified outside the window; a failed step is counted
# and reported, and 'bench: failures N' with N > 0 fails the host side.
#
# Output: machine-readable lines "bench: <key> <values...>" on stdout.

set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH=/sys/kernel/debug/devsec_bench
SIGN_NS=/sys/kernel/debug/devsec_bus/spdm/sign_ns
CYCLES=${CYCLES:-100}
PASSES=${PASSES:-3}
# Endpoints take TDISP only after SPDM negotiation (1) or at once (0); see
# spdm_mode.
BUS_SPDM=1
FAILS=0
LOADED=0
for a in $(cat /proc/cmdline); do
	[ "$a" = coco.bench=loaded ] && LOADED=1
done
# devsec_pci probe calls made by the driver_override binds of accept_all
# (one deferring probe each), so that series() can tell the probe calls the
# accepts caused from them.
OVR_PROBES=0

out() { echo "bench: $*"; }
fail() {
	FAILS=$((FAILS + 1))
	out fail "$*"
}

# recover BDF: back to unlocked and unbound after a failed step.
recover() {
	printf '%s' "$TSM" >"/sys/bus/pci/devices/$1/tsm/unlock" 2>/dev/null
	[ -e "/sys/bus/pci/devices/$1/driver" ] &&
		printf '%s' "$1" >"/sys/bus/pci/devices/$1/driver/unbind" 2>/dev/null
	return 0
}

# samples NAME VALUES...: "bench: samples NAME v1 v2 ..." (microseconds); the
# host pools the samples of one NAME and computes median and p95.
samples() { out samples "$@"; }

# load_bus N: (re)load devsec_bus with N endpoints and wait until all of
# them offer the tsm/ interface; fills BDFS.
load_bus() {
	local n=$1 i d
	BDFS=()
	lsmod | grep -q '^devsec_bus ' && rmmod devsec_bus
	modprobe devsec_bus endpoints="$n" spdm="$BUS_SPDM" ||
		{ fail "modprobe devsec_bus endpoints=$n spdm=$BUS_SPDM"; return 1; }
	for i in $(seq 100); do
		BDFS=()
		for d in /sys/bus/pci/devices/10000:01:*; do
			[ -e "$d/tsm/lock" ] && BDFS+=("${d##*/}")
		done
		[ ${#BDFS[@]} = "$n" ] && return 0
		sleep 0.1
	done
	fail "devsec_bus endpoints=$n: ${#BDFS[@]} endpoints with tsm/ after 10 s"
	return 1
}

# settle: let the driver core's deferred-probe retries (queued by every bind)
# finish before the next timed window: wait until the deferring platform
# devices are all back in the pending list.
settle() {
	local want=$1 i
	for i in $(seq 100); do
		[ "$(grep -c '^devsec_bench_defer' "$DEFERRED")" -ge "$want" ] && return 0
		sleep 0.05
	done
	fail "settle: fewer than $want deferring devices pending after 5 s"
}

# accept_all LABEL N REP: time lock+accept of every endpoint in BDFS, verify,
# then time unlock of all and verify.
accept_all() {
	local label=$1 n=$2 rep=$3 b t0 t1 werr=0 bad=0
	local paths=() q0
	q0=$(probe_attempts)
	for b in "${BDFS[@]}"; do
		override "$b"
		paths+=("/sys/bus/pci/devices/$b/tsm")
	done
	OVR_PROBES=$((OVR_PROBES + $(probe_attempts) - q0))
	t0=${EPOCHREALTIME/./}
	for b in "${paths[@]}"; do
		printf '%s' "$TSM" >"$b/lock" 2>/dev/null || werr=$((werr + 1))
		printf 1 >"$b/accept" 2>/dev/null || werr=$((werr + 1))
	done
	t1=${EPOCHREALTIME/./}
	for b in "${BDFS[@]}"; do
		state_is_running "$b" ||
			{ bad=$((bad + 1)); [ $bad = 1 ] && out diag "$b: $(state_line "$b")"; }
	done
	[ $werr = 0 ] && [ $bad = 0 ] ||
		fail "$label N=$n rep $rep: lock+accept: $werr failed writes, $bad endpoints not running"
	out scale "$label" "$n" "$rep" "$((t1 - t0))"

	werr=0
	t0=${EPOCHREALTIME/./}
	for b in "${paths[@]}"; do
		printf '%s' "$TSM" >"$b/unlock" 2>/dev/null || werr=$((werr + 1))
	done
	t1=${EPOCHREALTIME/./}
	bad=0
	for b in "${BDFS[@]}"; do state_is_pristine "$b" || bad=$((bad + 1)); done
	[ $werr = 0 ] && [ $bad = 0 ] ||
		fail "$label N=$n rep $rep: unlock: $werr failed writes, $bad endpoints not unlocked"
	out unlock_all "$label" "$n" "$rep" "$((t1 - t0))"
}

# accept_each N REP: like accept_all, but each endpoint gets driver_override
# only just before its own (separately timed) lock+accept, so that no other
# endpoint waits in the deferred-probe list meanwhile: the accept path's
# own cost, without the driver core's retries of the others.
accept_each() {
	local n=$1 rep=$2 b d t0 t1 sum=0 werr=0 bad=0
	for b in "${BDFS[@]}"; do
		d=/sys/bus/pci/devices/$b/tsm
		override "$b"
		t0=${EPOCHREALTIME/./}
		printf '%s' "$TSM" >"$d/lock" 2>/dev/null || werr=$((werr + 1))
		printf 1 >"$d/accept" 2>/dev/null || werr=$((werr + 1))
		t1=${EPOCHREALTIME/./}
		sum=$((sum + t1 - t0))
	done
	for b in "${BDFS[@]}"; do state_is_running "$b" || bad=$((bad + 1)); done
	[ $werr = 0 ] && [ $bad = 0 ] ||
		fail "isolated N=$n rep $rep: lock+accept: $werr failed writes, $bad endpoints not running"
	out scale isolated "$n" "$rep" "$sum"
	for b in "${BDFS[@]}"; do
		printf '%s' "$TSM" >"/sys/bus/pci/devices/$b/tsm/unlock" 2>/dev/null || werr=$((werr + 1))
		# Back to no override, so the next rep starts with nothing deferred.
		printf '\n' >"/sys/bus/pci/devices/$b/driver_override"
	done
	bad=0
	for b in "${BDFS[@]}"; do state_is_pristine "$b" || bad=$((bad + 1)); done
	[ $werr = 0 ] && [ $bad = 0 ] ||
		fail "isolated N=$n rep $rep: unlock: $werr failed writes, $bad endpoints not unlocked"
}

# series LABEL N REPS [DEFERRING]: REPS rounds of accept_all on N endpoints
# (for LABEL "scale" alternating with accept_each), and the probe calls
# this caused: of devsec_pci, and of the deferring platform devices.
series() {
	local label=$1 n=$2 reps=$3 defer=${4:-0} r p0=0 p1=0 q0 q1
	load_bus "$n" || return 1
	read -r _ p0 <"$BENCH/deferred"
	q0=$(probe_attempts)
	OVR_PROBES=0
	for r in $(seq "$reps"); do
		settle "$defer"
		accept_all "$label" "$n" "$r"
	done
	settle "$defer"
	sleep 0.2
	q1=$(probe_attempts)
	read -r _ p1 <"$BENCH/deferred"
	out defer_probes "$label" "$n" "$reps" "$((p1 - p0))"
	out pci_probes "$label" "$n" "$reps" "$((q1 - q0))"
	# The accepts' share: all devsec_pci probe calls of the series, the
	# driver core's background retries included, but for the binds.
	out accept_probes "$label" "$n" "$reps" "$((q1 - q0 - OVR_PROBES))"
	if [ "$label" = scale ]; then
		for b in "${BDFS[@]}"; do printf '\n' >"/sys/bus/pci/devices/$b/driver_override"; done
		for r in $(seq "$reps"); do accept_each "$n" "$r"; done
	fi
}

out start "$(uname -r)" "$(nproc) cpus" "$(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
out kernel "$(uname -v)"

if ! { modprobe devsec_bus && modprobe devsec_tsm && modprobe devsec_pci && find_tsm; }; then
	fail "cannot load the devsec samples or find a devsec TSM"
	out failures "$FAILS"
	out "done"
	exit 1
fi
[ -r "$BENCH/hotpath" ] || fail "no $BENCH (CONFIG_DEVSEC_BENCH off?)"
out tsm "$TSM"

# timed WHAT FILE DATA CHECK: write DATA to FILE, timing only the write
# (into DT, microseconds), then CHECK $BDF; on failure count it, say WHAT
# failed and return the endpoint to unlocked.
timed() {
	local t0 t1 rc
	t0=${EPOCHREALTIME/./}
	printf '%s' "$3" >"$2" 2>/dev/null
	rc=$?
	t1=${EPOCHREALTIME/./}
	DT=$((t1 - t0))
	[ $rc = 0 ] && "$4" "$BDF" && return 0
	fail "$1: $BDF: $(state_line "$BDF")"
	recover "$BDF"
	return 1
}

# latency LABEL CYCLES [DEFERRING]: lock, accept (until bound) and unlock of
# one endpoint, each timed on its own, verified after; "bench: samples
# LABEL_STEP ..." per step.
latency() {
	local label=$1 cycles=$2 defer=${3:-0} i
	local D=/sys/bus/pci/devices/$BDF/tsm lk=() ac=() ul=()
	local T=/sys/kernel/debug/devsec_tsm/timing p v
	local vca=() cert=() certf=() chal=() meas=() tdisp=() sign=() cached=0 c s0 s1
	for i in $(seq "$cycles"); do
		override "$BDF"
		settle "$defer"
		read -r s0 <"$SIGN_NS" || s0=0
		timed "$label cycle $i: lock" "$D/lock" "$TSM" state_is_locked || continue
		lk+=("$DT")
		# The parts of that lock as the TSM timed them (ns), outside the
		# window, and the time the emulated device spent signing in it.
		read -r s1 <"$SIGN_NS" || s1=0
		sign+=($(((s1 - s0) / 1000)))
		read -r c <"$T/chain_cached" || c=0
		cached=$((cached + c))
		for p in vca certificates challenge measurements tdisp_lock; do
			read -r v <"$T/${p}_ns" || v=0
			case $p in
			vca) vca+=($((v / 1000))) ;;
			certificates)
				if [ "$c" = 1 ]; then cert+=($((v / 1000))); else certf+=($((v / 1000))); fi
				;;
			challenge) chal+=($((v / 1000))) ;;
			measurements) meas+=($((v / 1000))) ;;
			tdisp_lock) tdisp+=($((v / 1000))) ;;
			esac
		done
		timed "$label cycle $i: accept" "$D/accept" 1 state_is_running || continue
		ac+=("$DT")
		timed "$label cycle $i: unlock" "$D/unlock" "$TSM" state_is_pristine || continue
		ul+=("$DT")
	done
	samples "${label}_lock" "${lk[@]}"
	samples "${label}_spdm_vca" "${vca[@]}"
	samples "${label}_spdm_certificates" "${cert[@]}"
	samples "${label}_spdm_certificates_fetched" "${certf[@]}"
	samples "${label}_device_signing" "${sign[@]}"
	samples "${label}_spdm_challenge" "${chal[@]}"
	samples "${label}_spdm_measurements" "${meas[@]}"
	samples "${label}_tdisp_lock" "${tdisp[@]}"
	out chain_cached "$label" "$cached" "${#lk[@]}"
	samples "${label}_accept" "${ac[@]}"
	samples "${label}_unlock" "${ul[@]}"
	[ ${#ul[@]} = "$cycles" ] || fail "$label: ${#ul[@]} of $cycles cycles completed"
}

# deferring N: make N deferring platform devices exist, and wait until they
# are all in the deferred-probe list.
deferring() {
	printf '%s' "$1" >"$BENCH/deferred" || fail "cannot set $1 deferring devices"
	settle "$1"
	[ "$(grep -c '^devsec_bench_defer' "$DEFERRED")" = "$1" ] ||
		fail "$1 deferring devices wanted, $(grep -c '^devsec_bench_defer' "$DEFERRED") in the list"
}

phase() { out phase "$1" "$(cut -d' ' -f1 /proc/uptime)"; }

# spdm_mode on|off: whether the next load_bus's endpoints require, and the
# TSM performs, SPDM authentication before TDISP.
spdm_mode() {
	local skip=0
	BUS_SPDM=1
	[ "$1" = off ] && { BUS_SPDM=0; skip=1; }
	printf '%s' "$skip" >/sys/kernel/debug/devsec_tsm/skip_spdm ||
		fail "cannot set devsec_tsm skip_spdm to $skip"
}

phase latency
#
# 1. Latency of lock, accept (until bound) and unlock of one endpoint, with
# SPDM authentication and without.
#
if [ $LOADED = 0 ]; then
	spdm_mode on
	load_bus 1 && latency plain "$CYCLES"
	spdm_mode off
	load_bus 1 && latency nospdm "$CYCLES"
	#
	# 2. Lock+accept with SPDM of N = 1, 16, 64 endpoints, all deferred
	# first, PASSES passes interleaved.
	#
	phase spdm
	spdm_mode on
	for _ in $(seq "$PASSES"); do
		series spdm 1 8
		series spdm 16 1
		series spdm 64 1
	done
fi
spdm_mode off

#
# 3. Scaling: per-device lock+accept for N = 1, 16, 64, 256, each point with
# at least 64 device operations per pass, PASSES passes interleaved so that
# drift in the (shared, emulated) machine hits every N alike.
#
phase scale
for _ in $(seq "$PASSES"); do
	series scale 1 64
	series scale 16 4
	series scale 64 1
	series scale 256 1
done

#
# 4. The same with 256 unrelated devices in the deferred-probe list, against
# the same measurement without them.  The machine's load drifts (TCG on
# shared cores), so present and absent alternate in small chunks.  Run last:
# by now the driver core's deferred-probe timeout (10 s after boot) is over.
#
phase deferred
if [ $LOADED = 1 ]; then
	for pass in $(seq 4); do
		deferring 0
		series absent 1 8
		deferring 256
		series deferred256 1 8 256
	done
	deferring 0
	rmmod devsec_pci devsec_tsm devsec_bus || fail "rmmod of the samples"
	phase end
	out failures "$FAILS"
	out done
	exit 0
fi
for pass in $(seq 8); do
	deferring 0
	series absent 1 8
	deferring 256
	out deferred_count "$(grep -c '^devsec_bench_defer' "$DEFERRED")" "$(grep -c . "$DEFERRED")"
	series deferred256 1 8 256
done
for _ in $(seq "$PASSES"); do
	deferring 0
	series absent 64 1
	deferring 256
	series deferred256 64 1 256
done
load_bus 1
for _ in $(seq 4); do
	deferring 0
	latency absent 8
	deferring 256
	latency deferred256 8 256
done
deferring 0

phase hotpath
hp=$(cat "$BENCH/hotpath") || fail "reading $BENCH/hotpath failed"
while read -r line; do
	out hotpath "$line"
done <<<"$hp"
echo "$hp" | grep -qx 'errors 0' || fail "hotpath: wrong answers ($(echo "$hp" | grep errors))"

rmmod devsec_pci devsec_tsm devsec_bus || fail "rmmod of the samples"
phase end
out failures "$FAILS"
out "done"
