#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh: the confidential device acceptance life cycle, narrated (make run).
# Runs in the guest; every value shown is read back from the kernel.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
D=$(dev)
F=$DBG/$BDF/fault
fail=0

say() { printf '\n%s\n' "$*"; }
more() { printf '%s\n' "$*"; }
show() { printf '    %-44s %s\n' "$1" "$2"; }
state() {
	local drv
	drv=$(driver_of)
	show "TDISP state of the device (debugfs):" "$(tdisp_state)"
	show "tsm/lock (TSM holding the lock):" "'$(holder)'"
	show "tsm/accept (device_cc_accepted()):" "$(accepted)"
	show "driver bound:" "${drv:-none}"
}
# The accept was refused: not accepted, no driver.
refused() { ! has_driver && [ "$(accepted)" = 0 ]; }
deferred() {
	! has_driver && grep "^$BDF" "$DEFERRED" | grep -q 'TEE acceptance pending'
}
# run CMD...: show a shell command and what the kernel answered.
run() {
	local err
	printf '  # %s\n' "$*"
	if err=$( { eval "$*"; } 2>&1); then
		printf '    -> ok\n'
	else
		printf '    -> error: %s\n' "${err##*: }"
		return 1
	fi
}
expect() { # expect DESCRIPTION CONDITION...
	if "${@:2}"; then printf '    [as expected] %s\n' "$1"; else
		printf '    [UNEXPECTED] %s\n' "$1"
		fail=1
	fi
}

say "== Confidential device acceptance on Linux $(uname -r) =="
cat <<'EOF'
A confidential VM only lets a device use private memory once the device has
been locked and checked through PCIe TDISP and then accepted into the VM's
Trusted Execution Environment (TEE). Drivers wait for that acceptance.
This VM has no TDISP hardware, so the devsec samples emulate it.
EOF

say "1. Load the emulated bus: an endpoint with DEVCAP.TEE, a BAR, DOE and IDE."
run modprobe devsec_bus || fail=1
show "device:" "$BDF vendor $(rd "$D/vendor") device $(rd "$D/device")"
show "BAR0:" "$(rd "$D/resource")"

say "2. Load the devsec TSM (the guest's TEE Security Manager) and the driver."
run modprobe devsec_tsm || fail=1
run modprobe devsec_pci || fail=1
TSM=$(basename "$(dirname "$(grep -l devsec /sys/class/tsm/tsm*/pci_mode | head -1)")")
show "TSM in devsec mode:" "${TSM:-none} (/sys/class/tsm/$TSM/pci_mode)"
more "   The TSM authenticates devices with SPDM against trust anchors that"
more "   userspace provides: root certificates in the keyring .devsec_tsm, empty"
more "   at first. The guest owner trusts the test root of the emulated devices:"
grep ' keyring *\.devsec_tsm' /proc/keys | sed 's/^/    \/proc\/keys: /'
run "devsec-agent trust $SPDM_ROOT" || fail=1
grep 'asymmetri' /proc/keys | sed 's/^/    \/proc\/keys: /'

say "3. Bind the driver. Its probe calls cc_probe() first: the device is not"
more "   accepted, so the driver core defers the probe and records why."
run "echo devsec_pci > $D/driver_override"
run "echo $BDF > /sys/bus/pci/drivers_probe"
show "/sys/kernel/debug/devices_deferred:" \
	"$(grep "^$BDF" /sys/kernel/debug/devices_deferred | tr '\t' ' ')"
state
expect "no driver bound, reason 'TEE acceptance pending'" deferred

say "4. Lock the device through the TSM. First SPDM 1.2 over DOE: version,"
more "   capabilities, algorithms (RSASSA-3072, SHA-384), the certificate chain,"
more "   validated against the trust anchors by the kernel's X.509 code, a signed"
more "   CHALLENGE and signed measurements with fresh nonces. Then TDISP"
more "   LOCK_INTERFACE: the configuration is frozen, the device returns a start nonce."
run "echo $TSM > $D/tsm/lock" || fail=1
dmesg | grep "$BDF: SPDM" | tail -1 | sed 's/^/    kernel: /'
T=/sys/kernel/debug/devsec_tsm/timing
show "lock time by part (ms):" "VCA $(($(rd $T/vca_ns) / 1000000))," \
	"certificates $(($(rd $T/certificates_ns) / 1000000))," \
	"CHALLENGE $(($(rd $T/challenge_ns) / 1000000))," \
	"MEASUREMENTS $(($(rd $T/measurements_ns) / 1000000))," \
	"TDISP LOCK $(($(rd $T/tdisp_lock_ns) / 1000000))"
show "evidence:" "tsm/cert_chain $(wc -c <"$D/tsm/cert_chain") bytes," \
	"tsm/measurements $(wc -c <"$D/tsm/measurements") bytes," \
	"tsm/measurements_nonce $(wc -c <"$D/tsm/measurements_nonce") bytes"
state
expect "TDISP CONFIG_LOCKED, not accepted" state_is_locked

say "5. Accept: the TSM fetches the interface report, checks every MMIO range"
more "   against the BARs, sends START_INTERFACE with the nonce and confirms RUN;"
more "   the PCI core then calls device_cc_accept() and probes the device again."
t0=${EPOCHREALTIME/./}
run "echo 1 > $D/tsm/accept" || fail=1
t1=${EPOCHREALTIME/./}
state
show "from the accept write to driver bound:" "$(((t1 - t0) / 1000)) ms"
expect "driver bound without further action, TDISP RUN" state_is_running
dmesg | grep -E "devsec_pci $BDF: |$BDF.*accepted" | tail -2 | sed 's/^/    kernel: /'

say "6. A second accept changes nothing; nonsense is refused with an error."
run "echo 1 > $D/tsm/accept"
run "echo maybe > $D/tsm/accept"
run "echo tsm999 > $D/tsm/unlock"
state

say "7. Unlock: the driver is unbound, device_cc_reject() runs, TDISP STOP."
run "echo $TSM > $D/tsm/unlock" || fail=1
state
expect "unbound, not accepted, TDISP CONFIG_UNLOCKED" state_is_pristine

say "8. Devices that cannot prove who they are: a chain to a root the guest"
more "   does not trust, and a forged CHALLENGE_AUTH signature. Lock is refused."
run "echo spdm_untrusted_root > $F"
run "echo $TSM > $D/tsm/lock"
dmesg | grep "$BDF: SPDM" | tail -1 | sed 's/^/    kernel: /'
run "echo none > $F; echo spdm_challenge_bad_sig > $F"
run "echo $TSM > $D/tsm/lock"
dmesg | grep "$BDF: SPDM" | tail -1 | sed 's/^/    kernel: /'
run "echo none > $F"
state
expect "not locked, not accepted, TDISP CONFIG_UNLOCKED" state_is_pristine

say "8b. A device that lies: its interface report does not match its BAR."
run "echo report_range > $F"
run "echo $TSM > $D/tsm/lock"
run "echo 1 > $D/tsm/accept"
dmesg | grep -iE "report|BAR" | tail -1 | sed 's/^/    kernel: /'
state
expect "accept refused, device not accepted, no driver" refused
run "echo none > $F"
run "echo $TSM > $D/tsm/unlock"
run "echo > $D/driver_override"

POL=/devsec/policies
# agent ARGS...: show the agent's command line and everything it prints.
agent() {
	printf '  # devsec-agent %s\n' "$*"
	devsec-agent "$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
say "9. Userspace decides. devsec-agent reads the evidence the TSM collected at"
more "   lock (tsm/interface_report, tsm/tdisp_caps, tsm/tdisp_version), checks it"
more "   against a policy, accepts exactly the generation it verified"
more "   (tsm/accept <- generation=N) and binds the policy's driver. The policy:"
grep -v '^#' "$POL/accept.toml" | grep . | sed 's/^/    | /'
agent list
run "echo $TSM > $D/tsm/lock"
agent show "$BDF"
agent accept --policy "$POL/accept.toml" "$BDF" || fail=1
state
expect "accepted by the agent, devsec_pci bound, TDISP RUN" state_is_running
run "echo $TSM > $D/tsm/unlock"

say "10. The device changes its report after the lock (after userspace read it):"
more "   the TSM fetches it again at accept, finds it differs, refuses before START."
run "echo $TSM > $D/tsm/lock"
run "echo report_changed > $F"
agent accept --policy "$POL/accept.toml" "$BDF"
state
more "   (the agent unlocks only what it locked itself; this lock was ours)"
expect "refused before START: still CONFIG_LOCKED, not accepted, no driver" state_is_locked
run "echo none > $F"
run "echo $TSM > $D/tsm/unlock"

say "11. A policy that expects another layout (an 8 KiB BAR0): refused, unlocked."
agent accept --policy "$POL/wrong-layout.toml" "$BDF"
expect "refused, device unlocked, no driver" state_is_pristine

say "12. The whole flow once more, as a CVM would run it: the agent decides."
verdict=$(devsec-agent accept --policy "$POL/accept.toml" "$BDF" 2>&1)
state
expect "accepted and bound" state_is_running
run "echo $TSM > $D/tsm/unlock"

if [ $fail = 0 ]; then
	say "verdict: PASS - deferred, locked, accepted (driver bound), unlocked, liar refused;" \
		"agent accepted by policy, refused a changed report and a wrong layout"
	more "agent's verdict: $verdict"
else
	say "verdict: FAIL - see the [UNEXPECTED] lines above"
fi
