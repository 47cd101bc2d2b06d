# SPDX-License-Identifier: GPL-2.0
#
# lib.sh: helpers shared by the devsec guest scripts (devsec.sh, the test
# suite; demo.sh, 'make run'; bench-guest.sh, 'make bench').  Sourced, not
# run; it only defines variables and functions.
#
# The scripts drive the PCI TSM devsec sysfs ABI (tsm/lock, tsm/accept,
# tsm/unlock) on the endpoints of the devsec_bus sample and check the state
# after nearly every step.  Under KASAN and TCG every fork and exec costs
# milliseconds, so the state predicates use builtins only: sysfs and
# debugfs are read with the read builtin, files are written with printf,
# and the bound driver is found by looking at the device's driver link.
# The helpers that print a value (rd, holder, ...) are meant for messages
# and one-off checks, where a command substitution is fine.

# Variables for the scripts that source this file (hence SC2034).
# shellcheck disable=SC2034
# The first endpoint of devsec_bus; most helpers take a BDF, default $BDF.
BDF=10000:01:00.0
DBG=/sys/kernel/debug/devsec_bus
DEFERRED=/sys/kernel/debug/devices_deferred
# The devsec-mode TSM (tsmN), and a second one if two are registered.
TSM=''
OTHER_TSM=''

dev() { echo "/sys/bus/pci/devices/${1:-$BDF}"; }

# wr FILE DATA: write DATA (printf %b escapes allowed) with one write(2);
# WERR is "" on success, else the strerror text.  printf is a bash builtin,
# so the errno is the kernel's.  The error goes through a file, not a
# command substitution, to avoid a fork.
WERRF=/tmp/devsec.werr
wr() {
	if { printf '%b' "$2" >"$1"; } 2>"$WERRF"; then
		WERR=""
		return 0
	fi
	read -r WERR <"$WERRF"
	WERR=${WERR##*: }
	return 1
}

# rd FILE: print the first line of FILE; false if it cannot be read.
rd() {
	local v=
	read -r v 2>/dev/null <"$1" || [ -n "$v" ] || return 1
	echo "$v"
}

tdisp_state() { rd "$DBG/${1:-$BDF}/tdisp_state" || echo "?"; }
accepted() { rd "/sys/bus/pci/devices/${1:-$BDF}/tsm/accept"; }
holder() { rd "/sys/bus/pci/devices/${1:-$BDF}/tsm/lock"; }
driver_of() {
	local d
	for d in /sys/bus/pci/drivers/*; do
		[ -e "$d/${1:-$BDF}" ] && { echo "${d##*/}"; return 0; }
	done
}
# bound [BDF]: devsec_pci is bound to the device.
bound() { [ -e "/sys/bus/pci/drivers/devsec_pci/${1:-$BDF}" ]; }
# has_driver [BDF]: any driver is bound to the device.
has_driver() { [ -e "/sys/bus/pci/devices/${1:-$BDF}/driver" ]; }
state_line() {
	local b=${1:-}
	echo "lock='$(holder "$b")' accept=$(accepted "$b") driver='$(driver_of "$b")'" \
		"tdisp=$(tdisp_state "$b")"
}

# read_state [BDF]: S_LOCK (TSM holding the lock, "" if none), S_ACCEPT
# (0 or 1, "" if the tsm/ files are hidden) and S_TDISP (TDISP state, "?"
# if unknown) of the device, without a fork.
read_state() {
	local b=${1:-$BDF}
	S_LOCK="" S_ACCEPT="" S_TDISP="?"
	read -r S_LOCK 2>/dev/null <"/sys/bus/pci/devices/$b/tsm/lock"
	read -r S_ACCEPT 2>/dev/null <"/sys/bus/pci/devices/$b/tsm/accept"
	read -r S_TDISP 2>/dev/null <"$DBG/$b/tdisp_state"
	return 0
}
# Unlocked, not accepted, no driver, TDISP CONFIG_UNLOCKED.
state_is_pristine() {
	read_state "${1:-}"
	[ -z "$S_LOCK" ] && [ "$S_ACCEPT" = 0 ] && ! has_driver "${1:-}" &&
		[ "$S_TDISP" = CONFIG_UNLOCKED ]
}
# Locked by $TSM, not accepted, no driver, TDISP CONFIG_LOCKED.
state_is_locked() {
	read_state "${1:-}"
	[ "$S_LOCK" = "$TSM" ] && [ "$S_ACCEPT" = 0 ] && ! has_driver "${1:-}" &&
		[ "$S_TDISP" = CONFIG_LOCKED ]
}
# Locked by $TSM, accepted, devsec_pci bound, TDISP RUN.
state_is_running() {
	read_state "${1:-}"
	[ "$S_LOCK" = "$TSM" ] && [ "$S_ACCEPT" = 1 ] && bound "${1:-}" &&
		[ "$S_TDISP" = RUN ]
}

# find_tsm: set TSM (and OTHER_TSM) to the TSM(s) in devsec mode; false if
# there is none.
find_tsm() {
	local t m
	TSM='' OTHER_TSM=''
	for t in /sys/class/tsm/tsm*; do
		m=''
		read -r m 2>/dev/null <"$t/pci_mode" || [ -n "$m" ] || continue
		[ "$m" = devsec ] || continue
		if [ -z "$TSM" ]; then TSM=${t##*/}; else OTHER_TSM=${t##*/}; fi
	done
	[ -n "$TSM" ] && trust_root
}

# The root certificate of the emulated devices (generated per build by
# spdm-keys.sh).  devsec_tsm starts with an empty keyring of trust anchors
# and refuses to lock a device it cannot authenticate, so the scripts trust
# this root whenever they find the keyring empty (after each modprobe).
SPDM_ROOT=/devsec/spdm/root.der
anchors_empty() { grep -q ' keyring *\.devsec_tsm: empty$' /proc/keys 2>/dev/null; }
trust_root() {
	anchors_empty || return 0
	devsec-agent trust "$SPDM_ROOT" >/dev/null
}

# override [BDF]: bind devsec_pci through driver_override; its probe defers
# until the device is accepted.
override() {
	echo devsec_pci >"$(dev "${1:-}")/driver_override"
	echo "${1:-$BDF}" >/sys/bus/pci/drivers_probe 2>/dev/null
	return 0
}
# lock, accept, unlock [BDF]: one write to the tsm/ file, error in WERR.
lock() { wr "$(dev "${1:-}")/tsm/lock" "$TSM"; }
accept() { wr "$(dev "${1:-}")/tsm/accept" 1; }
unlock() { wr "$(dev "${1:-}")/tsm/unlock" "$TSM"; }
# fault BDF FAULT: inject FAULT (or "none") into the emulated endpoint.
fault() { echo "$2" >"$DBG/$1/fault"; }
# layout BDF LAYOUT: the interface report layout of the endpoint's next lock.
layout() { echo "$2" >"$DBG/$1/report_layout"; }
# Probe calls of devsec_pci, deferred ones included (Rust module parameters
# are not exposed in sysfs, so the driver publishes the counter in debugfs).
probe_attempts() { rd /sys/kernel/debug/devsec_pci/probe_attempts || echo -1; }
