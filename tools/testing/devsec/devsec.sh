#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# devsec.sh: guest test suite for confidential device acceptance (KTAP).
# Runs inside the test VM as root.

set -u

n=0
plan=0
results=()

ok() { results+=("ok $((++n)) $1${2:+ # $2}"); }
not_ok() { results+=("not ok $((++n)) $1${2:+ # $2}"); }
skip() { results+=("ok $((++n)) $1 # SKIP $2"); }
diag() { results+=("# $*"); }

# check NAME CMD...: one test point from a command's exit status.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

kver=$(uname -r)

# Environment the later cases rely on.
check debugfs_devices_deferred_readable test -r /sys/kernel/debug/devices_deferred
check modules_indexed test -s "/lib/modules/$kver/modules.dep"

# ---------------------------------------------------------------------------
# devsec TSM + devsec_pci: registration and the full acceptance life cycle.
# ---------------------------------------------------------------------------

dbg=/sys/kernel/debug
bdf=10000:01:00.0
pdev=/sys/bus/pci/devices/$bdf
state_file=$dbg/devsec_bus/$bdf/tdisp_state
attempts_file=$dbg/devsec_pci/probe_attempts

# devsec_tsm_name: the tsmN whose pci_mode is "devsec" (never a fixed number).
devsec_tsm_name() {
	local t
	for t in /sys/class/tsm/tsm*; do
		[ "$(cat "$t/pci_mode" 2>/dev/null)" = devsec ] && { basename "$t"; return 0; }
	done
	return 1
}
# is_bound: devsec_pci drives the endpoint.
is_bound() { [ "$(basename "$(readlink "$pdev/driver" 2>/dev/null)")" = devsec_pci ]; }
not_bound() { ! [ -e "$pdev/driver" ]; }
tdisp_state_is() { [ "$(cat "$state_file" 2>/dev/null)" = "$1" ]; }
attr_is() { [ "$(cat "$pdev/tsm/$1" 2>/dev/null)" = "$2" ]; }
deferred_pending() { grep -q "^$bdf.*TEE acceptance pending" $dbg/devices_deferred; }
attempts() { cat "$attempts_file" 2>/dev/null || echo -1; }
running_msgs() { dmesg | grep -c "devsec_pci: $bdf accepted, BAR0 mapped, running"; }
write() { echo "$1" >"$2" 2>/dev/null; }

tsm_before=$(ls -d /sys/class/tsm/tsm* 2>/dev/null | wc -l)
check devsec_tsm_load modprobe devsec_tsm
check devsec_tsm_registers_class_device \
	test "$(ls -d /sys/class/tsm/tsm* 2>/dev/null | wc -l)" -eq $((tsm_before + 1))
check devsec_pci_load modprobe devsec_pci
check devsec_pci_probe_counter_readable test "$(attempts)" -ge 0

if ! modinfo devsec_bus >/dev/null 2>&1; then
	skip devsec_lifecycle "devsec_bus not built"
elif ! tsm=$(devsec_tsm_name); then
	not_ok devsec_tsm_pci_mode_devsec "no /sys/class/tsm/tsm*/pci_mode reads devsec"
else
	ok devsec_tsm_pci_mode_devsec "$tsm"
	check devsec_bus_load modprobe devsec_bus
	check endpoint_present test -d "$pdev"
	check endpoint_not_accepted attr_is accept 0

	# An unaccepted device: the probe runs, defers, and nothing binds.
	a0=$(attempts)
	write devsec_pci "$pdev/driver_override"
	write "$bdf" /sys/bus/pci/drivers_probe
	check probe_attempted test "$(attempts)" -gt "$a0"
	check probe_deferred_not_bound not_bound
	check probe_deferred_reason deferred_pending
	check deferred_still_not_accepted attr_is accept 0
	check tdisp_initially_unlocked tdisp_state_is CONFIG_UNLOCKED

	for i in 1 2 3; do
		check "cycle${i}_lock" write "$tsm" "$pdev/tsm/lock"
		check "cycle${i}_lock_reads_tsm" attr_is lock "$tsm"
		check "cycle${i}_tdisp_config_locked" tdisp_state_is CONFIG_LOCKED
		check "cycle${i}_locked_not_bound" not_bound
		check "cycle${i}_accept" write 1 "$pdev/tsm/accept"
		check "cycle${i}_accept_reads_1" attr_is accept 1
		check "cycle${i}_tdisp_run" tdisp_state_is RUN
		check "cycle${i}_driver_bound" is_bound
		check "cycle${i}_driver_running" test "$(running_msgs)" -eq "$i"
		check "cycle${i}_unlock" write "$tsm" "$pdev/tsm/unlock"
		check "cycle${i}_unbound" not_bound
		check "cycle${i}_accept_reads_0" attr_is accept 0
		check "cycle${i}_lock_reads_empty" attr_is lock ""
		check "cycle${i}_tdisp_config_unlocked" tdisp_state_is CONFIG_UNLOCKED
	done

	# Unregistering the TSM while it holds an accepted device unbinds the
	# driver, rejects and unlocks the device: nothing dangles.
	write "$tsm" "$pdev/tsm/lock" && write 1 "$pdev/tsm/accept"
	check teardown_accepted_before_unload is_bound
	check teardown_tsm_unload rmmod devsec_tsm
	check teardown_unbound not_bound
	check teardown_not_accepted attr_is accept 0
	check teardown_tdisp_config_unlocked tdisp_state_is CONFIG_UNLOCKED
	check teardown_tsm_reload modprobe devsec_tsm

	write "" "$pdev/driver_override"
	check devsec_bus_unload rmmod devsec_bus
fi

check devsec_pci_unload rmmod devsec_pci
check devsec_tsm_unload rmmod devsec_tsm
check devsec_tsm_unregisters_class_device \
	test "$(ls -d /sys/class/tsm/tsm* 2>/dev/null | wc -l)" -eq "$tsm_before"

echo "KTAP version 1"
echo "1..${#results[@]}"
printf '%s\n' "${results[@]}"
