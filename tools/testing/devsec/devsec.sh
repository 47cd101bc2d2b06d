#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# devsec.sh: guest test suite for confidential device acceptance.
#
# Runs inside the test VM as root and prints one KTAP document, streamed
# (the plan comes last).  It drives the sysfs ABI of the PCI TSM devsec
# path (tsm/lock, tsm/accept, tsm/unlock) on the endpoints of the
# devsec_bus sample, through the devsec_tsm sample, with the devsec_pci
# driver waiting in cc_probe(); the sysfs and state helpers are in lib.sh.
# Every case checks both the result (errno text, driver binding, TDISP
# state) and that a failed operation changed nothing.

set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# KTAP, streamed: the version line first, each result as it happens, the
# plan at the end (KTAP allows a trailing plan).  A guest that dies or hangs
# half-way still leaves every result up to that point; the missing plan
# tells the host that the suite did not finish.
echo "KTAP version 1"
N=0
# Wall time per test point (since the previous one), for the slowest-points
# diagnostic at the end: it shows where a slow run spends its time.
T_LAST=${EPOCHREALTIME/./}
TIMES=()
took() {
	local now=${EPOCHREALTIME/./}
	TIMES+=("$(((now - T_LAST) / 1000)) $1")
	T_LAST=$now
}
ok() { took "$1"; echo "ok $((++N)) $1${2:+ # $2}"; }
not_ok() {
	took "$1"
	echo "not ok $((++N)) $1"
	[ -n "${2:-}" ] && echo "# $2"
	return 0
}
skip() { took "$1"; echo "ok $((++N)) $1 # SKIP $2"; }
diag() { echo "# $*"; }
# result NAME COND_STATUS [DIAG]: a test point from a status.
result() { if [ "$2" = 0 ]; then ok "$1"; else not_ok "$1" "${3:-}"; fi; }
# ktap_end: the slowest test points as diagnostics, then the plan.
ktap_end() {
	local ms name
	diag "slowest test points (ms, including set-up since the previous point):"
	# (no process substitution: the initramfs has no /dev/fd)
	while read -r ms name; do
		diag "  $ms $name"
	done <<<"$(printf '%s\n' "${TIMES[@]}" | sort -rn | head -n 12)"
	echo "1..$N"
}

# The debug flavour (KASAN, lockdep, kmemleak) runs every case, but with
# fewer repetitions of the same code paths, which cost ~10x more under KASAN:
# MANY endpoints in the scale cases (the 256-endpoint enumeration and the
# multi-function slots are left to the normal flavour), LAT_CYCLES latency
# cycles, RACE_SECS of concurrent writers.
FLAVOUR=normal
for a in $(cat /proc/cmdline); do
	case $a in coco.flavour=*) FLAVOUR=${a#coco.flavour=} ;; esac
done
MANY=64 LAT_CYCLES=11 RACE_SECS=10
# The kcsan flavour (KCSAN instrumentation, ~as slow) does the same.
case $FLAVOUR in debug | kcsan) MANY=8 LAT_CYCLES=5 RACE_SECS=5 ;; esac
# last_bdf N: the BDF of endpoint N-1 (slot i % 32, function i / 32).
last_bdf() { printf '10000:01:%02x.%x' $((($1 - 1) % 32)) $((($1 - 1) / 32)); }

# expect_err NAME ERRTEXT FILE DATA [CHECK...]: the write must fail with
# ERRTEXT and CHECK (a command, default state_is_pristine) must hold after.
expect_err() {
	local name=$1 want=$2 f=$3 d=$4
	shift 4
	if wr "$f" "$d"; then
		not_ok "$name" "write of '$d' to $f succeeded, expected '$want'"
	elif [ "$WERR" != "$want" ]; then
		not_ok "$name" "got '$WERR', expected '$want'"
	elif ! "${@:-state_is_pristine}"; then
		not_ok "$name" "state changed: $(state_line)"
	else
		ok "$name"
	fi
}

# Lines "devsec_pci <bdf>: accepted, BAR0 mapped, running" in the kernel log.
running_msgs() { dmesg | grep -c "devsec_pci ${1:-$BDF}: accepted, BAR0 mapped, running"; }

# Return a device to unlocked/unaccepted/unbound whatever happened.
reset_dev() {
	local b=${1:-$BDF}
	[ -w "$DBG/$b/fault" ] && fault "$b" none
	[ -n "$(holder "$b")" ] && unlock "$b"
	[ -e "$(dev "$b")/driver" ] && echo "$b" >"$(dev "$b")/driver/unbind"
	[ "$(tdisp_state "$b")" = CONFIG_UNLOCKED ] || diag "reset $b: $(state_line "$b")"
	return 0
}

load_all() {
	modprobe devsec_bus "$@" && modprobe devsec_tsm && modprobe devsec_pci && find_tsm
}
unload_all() {
	local m
	for m in devsec_pf devsec_pci devsec_tsm devsec_bus; do
		[ -d "/sys/module/$m" ] && rmmod "$m"
	done
	! lsmod | grep -q '^devsec_'
}

cycle() { # one full life cycle on $1, each step verified
	local b=${1:-$BDF}
	override "$b"
	lock "$b" || { diag "lock: $WERR"; return 1; }
	state_is_locked "$b" || { diag "after lock: $(state_line "$b")"; return 1; }
	accept "$b" || { diag "accept: $WERR"; return 1; }
	state_is_running "$b" || { diag "after accept: $(state_line "$b")"; return 1; }
	unlock "$b" || { diag "unlock: $WERR"; return 1; }
	[ -z "$(holder "$b")" ] && [ "$(accepted "$b")" = 0 ] && ! bound "$b" &&
		[ "$(tdisp_state "$b")" = CONFIG_UNLOCKED ] ||
		{ diag "after unlock: $(state_line "$b")"; return 1; }
}

#
# Set-up
#
# have_module NAME: NAME.ko is installed (busybox modinfo succeeds for anything).
have_module() { grep -q "/$1\.ko" "/lib/modules/$(uname -r)/modules.dep" 2>/dev/null; }
if ! have_module devsec_bus; then
	skip devsec_samples "devsec samples not built (CONFIG_SAMPLES_DEVSEC)"
	ktap_end
	exit 0
fi

#
# CONFIDENTIAL_DEVICES=n: the header stubs. device_cc_probe() returns 0, so a
# driver that waits for acceptance binds at once (the kernel cannot track
# acceptance, and a guest built without it must keep its devices usable);
# tsm/accept is not offered, lock and unlock still work.
#
if [ "$FLAVOUR" = nocc ]; then
	D=$(dev)
	load_all
	result nocc_modules_load $? "$(lsmod | grep devsec | paste -sd' ')"
	result nocc_no_accept_attribute \
		"$([ -e "$D/tsm/lock" ] && [ ! -e "$D/tsm/accept" ]; echo $?)" \
		"$(ls "$D/tsm" 2>&1 | paste -sd' ')"
	a0=$(probe_attempts)
	override
	result nocc_probe_stub_binds_without_acceptance \
		"$(bound && [ "$(tdisp_state)" = CONFIG_UNLOCKED ] &&
			[ "$(($(probe_attempts) - a0))" = 1 ]; echo $?)" \
		"driver '$(driver_of)', tdisp $(tdisp_state), probes $(($(probe_attempts) - a0))"
	grep -q 'TEE acceptance pending' "$DEFERRED" 2>/dev/null
	result nocc_nothing_deferred "$([ $? != 0 ]; echo $?)" "$(cat "$DEFERRED" 2>&1)"
	echo "$BDF" >"$D/driver/unbind"
	lock && [ "$(holder)" = "$TSM" ] && [ "$(tdisp_state)" = CONFIG_LOCKED ] && unlock &&
		[ -z "$(holder)" ] && [ "$(tdisp_state)" = CONFIG_UNLOCKED ]
	result nocc_lock_unlock_still_work $? "$WERR; $(state_line)"
	unload_all
	result nocc_unload $?
	ktap_end
	exit 0
fi

#
# devsec_bus on its own: enumeration, config space, DOE, debugfs, removal.
#
# bus_window: "start end" (hex) of the BAR window devsec_bus claimed.
bus_window() {
	sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : devsec_bus$/\1 \2/p' /proc/iomem | head -n1
}
bus_count() { ls -d /sys/bus/pci/devices/10000:01:* 2>/dev/null | grep -c .; }
# cfg_rd DEV OFFSET: set CFG to a config space dword read through sysfs, as
# 0x%08x (one fork: under KASAN and TCG the DOE cases below are dominated by
# the cost of forks).
cfg_rd() {
	CFG=$(od -An -tx4 -j "$2" -N4 "$1/config")
	CFG=${CFG//[ $'\n']/}
	[ ${#CFG} = 8 ] && CFG=0x$CFG
}
# cfg_dword DEV OFFSET: print that dword.
cfg_dword() { cfg_rd "$1" "$2" && echo "$CFG"; }
# bar0_ok DEV: BAR0 is a 16 KiB 64-bit memory BAR inside the devsec_bus window.
bar0_ok() {
	local start end flags w
	read -r start end flags <"$1/resource" || return 1
	w=($(bus_window))
	[ ${#w[@]} = 2 ] || return 1
	((start != 0 && end - start + 1 == 0x4000)) || return 1
	((flags & 0x200 && flags & 0x100000)) || return 1 # IORESOURCE_MEM, IORESOURCE_MEM_64
	((start >= 0x${w[0]} && end <= 0x${w[1]}))
}
# PCIe capability at 0x40: RC integrated endpoint with DEVCAP.TEE; the extended
# list starts with DOE at 0x100, followed by IDE at 0x180; 4 KiB config space.
bus_caps_ok() {
	local d=$1 exp devcap doe ide
	[ "$(stat -c %s "$d/config")" = 4096 ] || return 1
	exp=$(cfg_dword "$d" $((0x40))) && devcap=$(cfg_dword "$d" $((0x44))) &&
		doe=$(cfg_dword "$d" $((0x100))) && ide=$(cfg_dword "$d" $((0x180))) || return 1
	(( (exp & 0xff) == 0x10 && (exp >> 20 & 0xf) == 9 && devcap & 0x40000000 )) || return 1
	(( (doe & 0xffff) == 0x2e && doe >> 20 == 0x180 && (ide & 0xffff) == 0x30 ))
}
# cfg_wr DEV OFFSET VALUE: one config space dword write through sysfs (the
# bytes go through a file, so that only dd forks).
CFGF=/tmp/devsec.cfg
cfg_wr() {
	local v
	printf -v v '%08x' "$3"
	printf "\\x${v:6:2}\\x${v:4:2}\\x${v:2:2}\\x${v:0:2}" >"$CFGF"
	dd if="$CFGF" of="$1/config" bs=4 seek=$(($2 / 4)) count=1 conv=notrunc 2>/dev/null
}
# Drive the DOE mailbox at 0x100 by hand, as drivers/pci/doe.c does: a TDISP
# GET_DEVICE_INTERFACE_STATE for interface 0x100 (bus 1, devfn 0) in an SPDM
# VENDOR_DEFINED_REQUEST in a CMA/SPDM data object; then a malformed object
# (length 3, two dwords sent) must set ERROR, which ABORT clears.
# doe_status_is DEV VALUE WHEN: DEV's DOE status register reads VALUE.
doe_status_is() {
	local st
	st=$(cfg_dword "$1" $((0x10c))) && ((st == $2)) && return 0
	diag "DOE status $st $3"
	return 1
}
bus_doe_by_hand() {
	local d=$1 w rsp=() i want
	doe_status_is "$d" 0 before || return 1
	for w in 0x00010001 9 0x0000fe12 0x01020003 0x01001100 0x00008510 0x00000100 0 0; do
		cfg_wr "$d" $((0x110)) $w || return 1
	done
	cfg_wr "$d" $((0x108)) 0x80000000 || return 1
	doe_status_is "$d" 0x80000000 "after GO" || return 1
	for i in $(seq 10); do
		rsp+=("$(cfg_dword "$d" $((0x114)))") && cfg_wr "$d" $((0x114)) 0 || return 1
	done
	doe_status_is "$d" 0 "after read" || return 1
	# DOE header (PCI-SIG CMA, 10 dwords); SPDM 0x7e; TDISP 1.0 DEVICE_INTERFACE_STATE
	# (0x05) for interface 0x100; state CONFIG_UNLOCKED (0).
	want="0x00010001 0x0000000a 0x00007e12 0x01020003 0x01001200"
	want+=" 0x00000510 0x00000100 0x00000000 0x00000000 0x00000000"
	[ "${rsp[*]}" = "$want" ] || { diag "response ${rsp[*]}"; return 1; }
	cfg_wr "$d" $((0x110)) 0x00010001 && cfg_wr "$d" $((0x110)) 3 &&
		cfg_wr "$d" $((0x108)) 0x80000000 || return 1
	doe_status_is "$d" 4 "after bad object" || return 1
	cfg_wr "$d" $((0x108)) 1 || return 1
	doe_status_is "$d" 0 "after ABORT" || return 1
}
# doe_exchange DEV DWORD...: sends one DOE data object through DEV's config
# file and sets RSP to the response dwords, read until DATA_OBJECT_READY clears.
doe_exchange() {
	local d=$1 w st i
	shift
	RSP=()
	for w in "$@"; do cfg_wr "$d" $((0x110)) $w || return 1; done
	cfg_wr "$d" $((0x108)) 0x80000000 || return 1
	# SPDM requests keep the mailbox BUSY until the device has answered (it
	# signs in process context); TDISP ones are answered at once.
	for ((i = 0; i < 300; i++)); do
		cfg_rd "$d" $((0x10c)) || return 1
		((CFG & 1)) || break
		sleep 0.01
	done
	for ((i = 0; i < 32; i++)); do
		cfg_rd "$d" $((0x10c)) || return 1
		((CFG & 0x80000000)) || return 0
		cfg_rd "$d" $((0x114)) && RSP+=("$CFG") && cfg_wr "$d" $((0x114)) 0 || return 1
	done
}
# spdm_code: the SPDM response code in RSP (byte 1 of the message).
spdm_code() { printf '0x%02x' $(((${RSP[2]:-0} >> 8) & 0xff)); }
# spdm_vca_by_hand DEV: GET_VERSION (1.0), GET_CAPABILITIES (1.2, no flags,
# 2048-byte messages) and NEGOTIATE_ALGORITHMS (RSASSA-3072, SHA-384, DMTF
# measurements) by hand: the device must answer VERSION, CAPABILITIES and
# ALGORITHMS, after which it takes TDISP.
spdm_vca_by_hand() {
	local d=$1
	doe_exchange "$d" 0x00010001 3 0x00008410 && [ "$(spdm_code)" = 0x04 ] ||
		{ diag "GET_VERSION: ${RSP[*]}"; return 1; }
	doe_exchange "$d" 0x00010001 7 0x0000e112 0 0 0x800 0x800 && [ "$(spdm_code)" = 0x61 ] ||
		{ diag "GET_CAPABILITIES: ${RSP[*]}"; return 1; }
	doe_exchange "$d" 0x00010001 10 0x0000e312 0x00010020 4 2 0 0 0 0 &&
		[ "$(spdm_code)" = 0x63 ] || { diag "NEGOTIATE_ALGORITHMS: ${RSP[*]}"; return 1; }
}
# tdisp_by_hand DEV TYPE BODY_DWORDS...: a TDISP 1.0 request of TYPE for
# interface 0x100 in an SPDM VENDOR_DEFINED_REQUEST in a CMA/SPDM object.
tdisp_by_hand() {
	local d=$1 type=$2
	shift 2
	doe_exchange "$d" 0x00010001 $((9 + $#)) 0x0000fe12 0x01020003 \
		$(printf '0x01%04x00' $((17 + 4 * $#))) $(printf '0x0000%02x10' $type) \
		0x00000100 0 0 "$@"
}
# tdisp_rsp_is TYPE LEN WHAT: RSP is a TDISP 1.0 response of TYPE for interface
# 0x100 with LEN bytes after the TDISP header.
tdisp_rsp_is() {
	local want
	want="0x00010001 $(printf '0x%08x' $((9 + ($2 + 3) / 4))) 0x00007e12 0x01020003"
	want+=" $(printf '0x01%04x00' $((17 + $2))) $(printf '0x0000%02x10' $1)"
	want+=" 0x00000100 0x00000000 0x00000000"
	[ "${RSP[*]:0:9}" = "$want" ] && [ ${#RSP[@]} = $((9 + ($2 + 3) / 4)) ] && return 0
	diag "$3: response ${RSP[*]}"
	return 1
}
# With only devsec_bus loaded, LOCK_INTERFACE_REQUEST (flags 0, offset 0, mask
# 0) and STOP_INTERFACE_REQUEST written through the config file, which runs
# under the PCI core's raw pci_lock with interrupts off: each LOCK must get a
# LOCK_INTERFACE_RESPONSE (not TDISP_ERROR INSUFFICIENT_ENTROPY) with a fresh
# nonce. Six LOCKs in a row, more than an endpoint's pool of four pre-drawn
# nonces, so the pool must also have been refilled.
bus_lock_from_user_config() {
	local d=$1 i nonce nonces=()
	for i in 1 2 3 4 5 6; do
		[ "$(tdisp_state)" = CONFIG_UNLOCKED ] ||
			{ diag "LOCK $i: $(tdisp_state)"; return 1; }
		tdisp_by_hand "$d" 0x83 0 0 0 0 0 && tdisp_rsp_is 0x03 32 "LOCK $i" || return 1
		nonce="${RSP[*]:9:8}"
		[[ ${nonce//0x/} =~ [1-9a-f] ]] || { diag "LOCK $i: all-zero nonce"; return 1; }
		nonces+=("$nonce")
		[ "$(tdisp_state)" = CONFIG_LOCKED ] ||
			{ diag "after LOCK $i: $(tdisp_state)"; return 1; }
		tdisp_by_hand "$d" 0x87 && tdisp_rsp_is 0x07 0 "STOP $i" || return 1
	done
	[ "$(tdisp_state)" = CONFIG_UNLOCKED ] || { diag "after STOP: $(tdisp_state)"; return 1; }
	[ "$(printf '%s\n' "${nonces[@]}" | sort -u | wc -l)" = 6 ] ||
		{
			diag "nonces repeat: $(printf '%s\n' "${nonces[@]}" | sort | uniq -d)"
			return 1
		}
}
bus_faults_ok() {
	local f=$DBG/$BDF/fault st
	[ "$(cat "$f")" = none ] || { diag "fault reads '$(cat "$f")'"; return 1; }
	fault "$BDF" report_range && fault "$BDF" bad_nonce || return 1
	[ "$(cat "$f")" = "report_range bad_nonce" ] ||
		{ diag "fault reads '$(cat "$f")'"; return 1; }
	wr "$f" bogus && return 1
	[ "$WERR" = "Invalid argument" ] || { diag "bogus fault: '$WERR'"; return 1; }
	fault "$BDF" doe_busy || return 1
	st=$(cfg_dword "$(dev)" $((0x10c))) && ((st & 1)) || { diag "DOE status $st"; return 1; }
	fault "$BDF" none || return 1
	st=$(cfg_dword "$(dev)" $((0x10c))) && ((st == 0)) || { diag "DOE status $st"; return 1; }
	[ "$(cat "$f")" = none ] || return 1
	fault "$BDF" error && [ "$(tdisp_state)" = ERROR ]
}
bus_remove_ok() {
	wr "$DBG/$BDF/remove" 1 && [ ! -e "$(dev)" ] || return 1
	# Gone for good: a rescan does not bring it back, a second removal fails.
	echo 1 >/sys/bus/pci/rescan
	[ ! -e "$(dev)" ] || return 1
	! wr "$DBG/$BDF/remove" 1 && [ "$WERR" = "No such device" ]
}
bus_unloaded() {
	[ ! -e "$(dev)" ] && [ ! -e "$DBG" ] && [ -z "$(bus_window)" ] &&
		! grep -q '^devsec_bus ' /proc/modules
}
# bus_many N LAST: N endpoints up to LAST, each with its own BAR0 in the window
# and the CMA/SPDM feature found by the DOE core.
bus_many() {
	local d starts=() n=0
	[ "$(bus_count)" = "$1" ] && [ -e "$(dev "$2")" ] ||
		{ diag "$(bus_count) endpoints"; return 1; }
	for d in /sys/bus/pci/devices/10000:01:*; do
		bar0_ok "$d" && [ -e "$d/doe_features/0001:01" ] ||
			{ diag "${d##*/}: $(head -1 "$d/resource")"; return 1; }
		starts+=("$(cut -d' ' -f1 "$d/resource" | head -n1)")
		n=$((n + 1))
	done
	[ "$(printf '%s\n' "${starts[@]}" | sort -u | wc -l)" = "$n" ]
}
bus_cycle() {
	local i
	for i in 1 2 3; do
		modprobe devsec_bus endpoints=4 && [ "$(bus_count)" = 4 ] &&
			rmmod devsec_bus && bus_unloaded || return 1
	done
}

modprobe devsec_bus
result bus_modprobe $?
D=$(dev)
result bus_ep0_present "$([ -d "$D" ]; echo $?)" "$(ls /sys/bus/pci/devices | paste -sd' ')"
result bus_ep0_ids "$([ "$(cat "$D/vendor")" = 0x1b36 ] && [ "$(cat "$D/device")" = 0x0d5c ] &&
	[ "$(cat "$D/class")" = 0xff0000 ]; echo $?)" \
	"$(cat "$D/vendor" "$D/device" "$D/class" 2>&1 | paste -sd' ')"
bar0_ok "$D"
result bus_ep0_bar0_16k_in_window $? "$(head -1 "$D/resource") window $(bus_window)"
bus_caps_ok "$D"
result bus_ep0_pcie_tee_doe_ide $?
result bus_ep0_doe_cma_discovered "$([ -e "$D/doe_features/0001:01" ]; echo $?)" \
	"$(ls "$D/doe_features" 2>&1 | paste -sd' ')"
result bus_ep0_tdisp_unlocked "$([ "$(tdisp_state)" = CONFIG_UNLOCKED ]; echo $?)" "$(tdisp_state)"
# TDISP before SPDM negotiation: the SPDM responder refuses it (ERROR in SPDM
# 1.0, UnexpectedRequest 0x04), the TDISP responder never sees it.
tdisp_by_hand "$D" 0x85
result bus_ep0_tdisp_before_vca_refused "$([ "${RSP[*]}" = "0x00010001 0x00000003 0x00047f10" ] &&
	[ "$(tdisp_state)" = CONFIG_UNLOCKED ] && [ "$(rd "$DBG/$BDF/spdm_state")" = NOT_STARTED ]
	echo $?)" "response ${RSP[*]}, $(tdisp_state), SPDM $(rd "$DBG/$BDF/spdm_state")"
spdm_vca_by_hand "$D"
result bus_ep0_spdm_vca_by_hand "$([ $? = 0 ] && [ "$(rd "$DBG/$BDF/spdm_state")" = NEGOTIATED ]
	echo $?)" "SPDM $(rd "$DBG/$BDF/spdm_state")"
bus_doe_by_hand "$D"
result bus_ep0_doe_mailbox_tdisp $?
bus_lock_from_user_config "$D"
result bus_lock_from_user_config_access $?
bus_faults_ok
result bus_ep0_faults $?
bus_remove_ok
result bus_ep0_surprise_remove $? "$WERR"
rmmod devsec_bus
result bus_rmmod $?
bus_unloaded
result bus_unloaded_clean $? "$(grep devsec /proc/iomem /proc/modules)"
modprobe devsec_bus endpoints=0 2>/dev/null || modprobe devsec_bus endpoints=257 2>/dev/null
result bus_endpoints_out_of_range "$([ $? != 0 ] && bus_unloaded; echo $?)"
modprobe devsec_bus endpoints=$MANY && bus_many $MANY "$(last_bdf $MANY)"
result bus_endpoints_$MANY $?
rmmod devsec_bus
if [ "$FLAVOUR" != normal ]; then
	skip bus_endpoints_256 "normal flavour only (~40 s under KASAN; $MANY enumerated above)"
else
	modprobe devsec_bus endpoints=256 && bus_many 256 "$(last_bdf 256)"
	result bus_endpoints_256 $?
	rmmod devsec_bus
fi
bus_cycle
result bus_load_unload_cycle $?
dmesg | grep -E 'DOE: .*(failed|timed out|busy|expected)'
result bus_no_doe_errors "$([ $? != 0 ]; echo $?)"

if ! have_module devsec_tsm || ! have_module devsec_pci; then
	skip devsec_acceptance "devsec_tsm or devsec_pci not built"
	ktap_end
	exit 0
fi

load_all
result modules_load $? "$(lsmod | grep devsec)"
result tsm_pci_mode_devsec "$([ -n "$TSM" ]; echo $?)" \
	"no /sys/class/tsm/tsm*/pci_mode reads devsec"
D=$(dev)
result endpoint_enumerated "$([ "$(cat "$D/vendor" 2>/dev/null)" = 0x1b36 ] &&
	[ "$(cat "$D/device" 2>/dev/null)" = 0x0d5c ]; echo $?)" \
	"vendor/device $(cat "$D/vendor" "$D/device" 2>&1)"
result tsm_attr_modes "$([ "$(stat -c %a "$D/tsm/lock")" = 600 ] &&
	[ "$(stat -c %a "$D/tsm/accept")" = 600 ] &&
	[ "$(stat -c %a "$D/tsm/unlock")" = 200 ]; echo $?)" \
	"$(ls -l "$D/tsm/" 2>&1 | paste -sd' ')"
result initial_state_unlocked "$(state_is_pristine; echo $?)" "$(state_line)"

#
# SPDM device authentication before TDISP (devsec_tsm's tsm_spdm.rs): VCA,
# the certificate chain validated against the trust anchors userspace put
# into the keyring .devsec_tsm (find_tsm added the build's test root), a
# signed CHALLENGE and signed measurements; the chain, the measurements and
# their nonce are evidence. Every refusal leaves the device unlocked, with no
# TDISP state, and names its cause in the log.
#
TIMING=/sys/kernel/debug/devsec_tsm/timing
# le N OFFSET FILE: the N-byte little-endian unsigned number at OFFSET of FILE.
le() { od -An -v -tu"$1" -j "$2" -N "$1" "$3" | tr -d ' '; }
# unpriv CMD: run CMD as nobody; true if it succeeded.
unpriv() { su -s /bin/sh nobody -c "$1" >/dev/null 2>&1; }
# hexat FILE OFFSET LEN: LEN bytes of FILE at OFFSET, as lowercase hex.
hexat() { od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
# The device's measurements (bus_spdm.rs): SHA-384 of its ROM and firmware.
MEAS_ROM=45386b07c72ae0d2a0813d4ee4e372bc12ad274e146d99300ada13b6830cf71f301afe80f6abbdb8399ed90b6b23d405
MEAS_FW=bd827205f99987c42500c3bab2171fb36f10f7a4e2d75bb3f192aeb58027b65ca0117e1cfbc4f09ea966e5dee48a60d0
spdm_state() { rd "$DBG/${1:-$BDF}/spdm_state" || echo "?"; }
# spdm_refused NAME ERRTEXT LOGTEXT: lock fails with ERRTEXT, logs LOGTEXT,
# and leaves the device unlocked with no TDISP state.
spdm_refused() {
	local m0
	m0=$(dmesg | grep -c "$BDF: SPDM: device not authenticated: $3")
	if lock; then
		not_ok "$1" "lock succeeded: $(state_line)"
		unlock
	elif [ "$WERR" != "$2" ]; then
		not_ok "$1" "lock failed with '$WERR', expected '$2'"
	elif ! state_is_pristine; then
		not_ok "$1" "state after refused lock: $(state_line)"
	elif [ "$(dmesg | grep -c "$BDF: SPDM: device not authenticated: $3")" != $((m0 + 1)) ]; then
		not_ok "$1" "no log '$3': $(dmesg | grep "$BDF: SPDM" | tail -1)"
	else
		ok "$1"
	fi
}
# spdm_fault NAME FAULT ERRTEXT LOGTEXT: spdm_refused with FAULT armed.
spdm_fault() {
	fault "$BDF" "$2"
	spdm_refused "$1" "$3" "$4"
	fault "$BDF" none
}

# No trust anchor at all: nothing can be authenticated.
if devsec-agent trust --clear >/dev/null 2>&1 && anchors_empty; then
	spdm_refused spdm_untrusted_root_refused "Required key not available" \
		"certificate 0 of the chain is not signed by a trust anchor"
else
	not_ok spdm_untrusted_root_refused "could not empty the trust anchors: $(grep devsec /proc/keys)"
fi
trust_root
st0=$(spdm_state)
lock
read_state
result spdm_vca "$([ -z "$WERR" ] && [ "$S_TDISP" = CONFIG_LOCKED ] &&
	[ "$(spdm_state)" = AUTHENTICATED ] && [ "$(rd $TIMING/vca_ns)" -gt 0 ] &&
	dmesg | grep -q "$BDF: SPDM: device authenticated"; echo $?)" \
	"'$WERR', SPDM state $st0 -> $(spdm_state), $(state_line)"
# The chain as the device sent it: Length, reserved, root hash, then the root
# (byte for byte the trusted root.der) and the leaf.
ch=$D/tsm/cert_chain
rl=$(wc -c <"$SPDM_ROOT")
result spdm_cert_chain_verified "$([ "$(le 2 0 "$ch")" = "$(wc -c <"$ch")" ] &&
	[ "$(hexat "$ch" 52 "$rl")" = "$(hexat "$SPDM_ROOT" 0 "$rl")" ] &&
	[ "$(wc -c <"$ch")" -gt $((52 + rl)) ] && [ "$(rd $TIMING/chain_cached)" = 0 ]; echo $?)" \
	"chain of $(wc -c <"$ch") bytes, Length $(le 2 0 "$ch"), cached $(rd $TIMING/chain_cached)"
result spdm_challenge_verified "$([ "$(rd $TIMING/challenge_ns)" -gt 0 ] &&
	[ "$(spdm_state)" = AUTHENTICATED ]; echo $?)" "SPDM state $(spdm_state)"
# MEASUREMENTS: SPDM 1.2, two DMTF blocks, the ROM and firmware digests, a
# 32-byte responder nonce, no opaque data and a 384-byte signature.
ms=$D/tsm/measurements
n1=$(hexat "$D/tsm/measurements_nonce" 0 32)
result spdm_measurements_verified "$([ "$(wc -c <"$ms")" = 536 ] &&
	[ "$(hexat "$ms" 0 2)" = 1260 ] && [ "$(le 1 4 "$ms")" = 2 ] &&
	[ "$(hexat "$ms" 15 48)" = $MEAS_ROM ] && [ "$(hexat "$ms" 70 48)" = $MEAS_FW ] &&
	[ ${#n1} = 64 ] && [ "$n1" != "$(printf '0%.0s' {1..64})" ]; echo $?)" \
	"measurements $(wc -c <"$ms") bytes: $(hexat "$ms" 0 16)..., nonce $n1"
result evidence_has_cert_chain "$([ "$(stat -c %a "$ch")" = 400 ] &&
	! unpriv "cat $ch" && [ "$(le 2 0 "$ch")" -gt 1000 ]; echo $?)" \
	"mode $(stat -c %a "$ch")"
unlock
# Lock again: the chain (same digest) comes from the cache, the nonce is new.
lock
result spdm_cert_chain_cached "$([ -z "$WERR" ] && [ "$(rd $TIMING/chain_cached)" = 1 ] &&
	[ "$(hexat "$D/tsm/measurements_nonce" 0 32)" != "$n1" ]; echo $?)" \
	"'$WERR', cached $(rd $TIMING/chain_cached)"
unlock
# The device's faults: each refuses the lock with its own cause.
spdm_fault spdm_fault_challenge_bad_sig spdm_challenge_bad_sig "Key was rejected by service" \
	"signature over the transcript does not verify"
spdm_fault spdm_fault_meas_bad_sig spdm_meas_bad_sig "Key was rejected by service" \
	"signature over the transcript does not verify"
spdm_fault spdm_fault_untrusted_root spdm_untrusted_root "Required key not available" \
	"certificate 0 of the chain is not signed by a trust anchor"
spdm_fault spdm_fault_malformed_cert spdm_malformed_cert "Bad message" \
	"certificate 1 of the chain is malformed"
# A leaf that names the trusted root as issuer, with the root's signature of
# another certificate: the keyring's chain restriction refuses it.
spdm_fault spdm_fault_forged_cert spdm_forged_cert "Key was rejected by service" \
	"certificate 1 of the chain: its issuer's signature does not verify"
# A replayed MEASUREMENTS (signed over another requester nonce): the nonce is
# in the signed transcript, so the signature does not verify.
spdm_fault spdm_fault_nonce_not_echoed spdm_stale_nonce "Key was rejected by service" \
	"signature over the transcript does not verify"
spdm_fault spdm_fault_bad_algorithms spdm_bad_algorithms "Package not installed" \
	"device selected algorithms the TSM does not support"
# A truncated CERTIFICATE: only seen when the chain is fetched, so the TSM is
# reloaded first (its chain cache goes with it, as do its anchors).
rmmod devsec_pci && rmmod devsec_tsm && modprobe devsec_tsm && modprobe devsec_pci && find_tsm
spdm_fault spdm_fault_truncated_cert spdm_truncated_cert "Protocol error" \
	"unacceptable response: Codec"
# Valid but tiny CERTIFICATE portions: the TSM stops asking after a bound.
spdm_fault spdm_fault_short_portions spdm_short_portions "Protocol error" \
	"certificate chain needs more than 32 requests"
# ALGORITHMS without a measurement specification: nothing to attest with.
spdm_fault spdm_fault_no_measurements spdm_no_measurements "Operation not supported" \
	"device does not offer DMTF measurements"
# The measurements change between the lock and the accept: accept refuses,
# the device stays locked, not running.
override
fault "$BDF" spdm_measurement_changes
lock
accept
result spdm_fault_measurement_changed "$([ "$WERR" = "Bad message" ] && state_is_locked &&
	dmesg | grep -q "$BDF: SPDM: device not measured again: measurements changed"; echo $?)" \
	"'$WERR'; $(state_line)"
fault "$BDF" none
reset_dev
# The device presents another chain at accept than at lock: refused, still
# locked, not running.
override
lock
fault "$BDF" spdm_untrusted_root
accept
result spdm_accept_chain_changed_refused "$([ "$WERR" = "Bad message" ] && state_is_locked &&
	dmesg | grep -q "$BDF: SPDM: device not measured again: certificate chain changed"
	echo $?)" "'$WERR'; $(state_line)"
fault "$BDF" none
reset_dev
# VENDOR_DEFINED (TDISP) before VCA: a fresh device refuses it (SPDM ERROR
# UnexpectedRequest, sent in SPDM 1.0 as no version is negotiated yet).
rmmod devsec_pci && rmmod devsec_tsm && rmmod devsec_bus && load_all
wr /sys/kernel/debug/devsec_tsm/skip_spdm 1
st0=$(spdm_state)
lock
result spdm_fault_vendor_before_vca "$([ "$WERR" = "Protocol error" ] && state_is_pristine &&
	[ "$st0" = none ] && [ "$(spdm_state)" = NOT_STARTED ] &&
	dmesg | grep -q "$BDF: TDISP GET_TDISP_VERSION: unacceptable response: Codec(BadSpdmVersion"
	echo $?)" "'$WERR'; SPDM state $st0 -> $(spdm_state); $(state_line)"
# A device that does not require authentication (devsec_bus spdm=0) takes
# TDISP at once, so that skip_spdm locks it, unauthenticated.
rmmod devsec_pci && rmmod devsec_tsm && rmmod devsec_bus && load_all spdm=0
wr /sys/kernel/debug/devsec_tsm/skip_spdm 1
lock
result bus_spdm_off_tdisp_without_vca "$([ -z "$WERR" ] && state_is_locked &&
	[ "$(spdm_state)" = none ] && dmesg | grep -q "$BDF: SPDM: skipped (skip_spdm)"
	echo $?)" "'$WERR'; SPDM state $(spdm_state); $(state_line)"
unlock
rmmod devsec_pci && rmmod devsec_tsm && rmmod devsec_bus && load_all
wr /sys/kernel/debug/devsec_tsm/skip_spdm 0
cycle
result spdm_faults_cleared_cycle_works $?

#
# Deferral: the driver waits in cc_probe() and says why.
#
a0=$(probe_attempts)
override
result deferral_probe_attempted "$([ "$a0" -ge 0 ] && [ "$(probe_attempts)" -gt "$a0" ]; echo $?)" \
	"probe attempts $a0 -> $(probe_attempts)"
result deferral_driver_not_bound "$(! bound; echo $?)" "$(state_line)"
grep "^$BDF" "$DEFERRED" | grep -q "TEE acceptance pending"
result deferral_reason_recorded $? "$(cat "$DEFERRED")"
result deferral_accept_reads_0 "$([ "$(accepted)" = 0 ]; echo $?)"

#
# Life cycle, three times.
#
m0=$(running_msgs)
for i in 1 2 3; do
	cycle
	result "lifecycle_cycle_$i" $?
done
result lifecycle_driver_ran_each_cycle "$([ "$(running_msgs)" = $((m0 + 3)) ]; echo $?)" \
	"'accepted, BAR0 mapped, running' logged $(($(running_msgs) - m0)) times in 3 cycles"
# Binding without further user action: accept alone bound the driver (cycle
# checks bound right after the accept write returned).
override
lock && accept
grep -q "^$BDF" "$DEFERRED"
result accept_removes_deferral "$([ $? != 0 ] && state_is_running; echo $?)" "$(state_line)"
reset_dev

# Latency of lock + accept (write of "1" until the driver is bound, which
# the accept write does synchronously), over LAT_CYCLES: median in the log.
lat=()
for i in $(seq $LAT_CYCLES); do
	override
	t0=${EPOCHREALTIME/./}
	lock && accept
	t1=${EPOCHREALTIME/./}
	bound && lat+=($(((t1 - t0) / 100)))
	reset_dev
done
if [ ${#lat[@]} = $LAT_CYCLES ]; then
	med=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n "$((LAT_CYCLES / 2 + 1))p")
	ok lock_accept_latency_measured
	diag "lock+accept to driver bound: median $((med / 10)).$((med % 10)) ms" \
		"over $LAT_CYCLES cycles"
else
	not_ok lock_accept_latency_measured "only ${#lat[@]} of $LAT_CYCLES cycles bound"
fi

#
# Bad input to tsm/lock: clean errno, nothing changes.
#
L=$D/tsm/lock
# An empty line: a zero-length write never reaches the kernel.
expect_err lock_empty_line "Invalid argument" "$L" "\n"
expect_err lock_tsm_without_number "Invalid argument" "$L" "tsm"
expect_err lock_negative_id "Invalid argument" "$L" "tsm-1"
expect_err lock_unknown_tsm "No such device or address" "$L" "tsm999"
expect_err lock_4096_bytes_junk "Invalid argument" "$L" "$(head -c 4096 /dev/zero | tr '\0' 'x')"
expect_err lock_non_utf8 "Invalid argument" "$L" '\xff\xfe\x80'
expect_err lock_trailing_garbage "Invalid argument" "$L" "${TSM}garbage"
expect_err lock_trailing_word "Invalid argument" "$L" "$TSM x"
link_tsm=
for t in /sys/class/tsm/tsm*; do
	[ "$(cat "$t/pci_mode" 2>/dev/null)" = link ] && link_tsm=${t##*/}
done
if [ -n "$link_tsm" ]; then
	expect_err lock_link_mode_tsm "No such device or address" "$L" "$link_tsm"
else
	skip lock_link_mode_tsm "no link-mode TSM registered in this guest"
fi

#
# Bad input to tsm/accept and tsm/unlock.
#
A=$D/tsm/accept
U=$D/tsm/unlock
expect_err accept_before_lock "No such device or address" "$A" "1"
expect_err unlock_when_not_locked "No such device or address" "$U" "$TSM"
lock
expect_err lock_twice "Device or resource busy" "$L" "$TSM" state_is_locked
expect_err accept_zero "Invalid argument" "$A" "0" state_is_locked
expect_err accept_no "Invalid argument" "$A" "no" state_is_locked
expect_err accept_maybe "Invalid argument" "$A" "maybe" state_is_locked
expect_err unlock_other_tsm_name "Invalid argument" "$U" "tsm999" state_is_locked
expect_err unlock_garbage "Invalid argument" "$U" "${TSM}x" state_is_locked
# Accepting twice is a no-op: still one driver, still RUN.
override
accept
a1=$(probe_attempts)
accept
result accept_again_is_noop \
	"$([ $? = 0 ] && state_is_running && [ "$(probe_attempts)" = "$a1" ]; echo $?)" \
	"$(state_line) attempts $a1 -> $(probe_attempts)"
reset_dev

#
# A driver bound before acceptance (pci-stub ignores acceptance): lock and
# accept must refuse with EBUSY and change nothing.
#
if [ -d /sys/bus/pci/drivers/pci-stub ]; then
	echo pci-stub >"$D/driver_override"
	echo "$BDF" >/sys/bus/pci/drivers_probe
	stub_bound() {
		[ "$(driver_of)" = pci-stub ] && [ -z "$(holder)" ] && [ "$(accepted)" = 0 ]
	}
	expect_err lock_with_driver_bound "Device or resource busy" "$L" "$TSM" stub_bound
	echo "$BDF" >"$D/driver/unbind"
	lock
	echo "$BDF" >/sys/bus/pci/drivers_probe
	stub_locked() {
		[ "$(driver_of)" = pci-stub ] && [ "$(holder)" = "$TSM" ] && [ "$(accepted)" = 0 ]
	}
	expect_err accept_with_driver_bound "Device or resource busy" "$A" "1" stub_locked
	reset_dev
	echo >"$D/driver_override"
else
	skip lock_with_driver_bound "pci-stub not available"
	skip accept_with_driver_bound "pci-stub not available"
fi

#
# Permissions: an unprivileged user can neither write nor read the files.
#
unpriv "echo $TSM > $L"
result unprivileged_lock_denied "$([ $? != 0 ] && state_is_pristine; echo $?)" "$(state_line)"
lock
unpriv "echo 1 > $A"
result unprivileged_accept_denied "$([ $? != 0 ] && state_is_locked; echo $?)" "$(state_line)"
unpriv "echo $TSM > $U"
result unprivileged_unlock_denied "$([ $? != 0 ] && state_is_locked; echo $?)" "$(state_line)"
unpriv "cat $L"
result unprivileged_read_denied "$([ $? != 0 ]; echo $?)"
reset_dev

#
# Evidence: what the TSM collected at lock, for root, while locked; a new
# generation with each lock; an accept bound to the generation verified.
#
EVIDENCE="generation tdisp_version tdisp_caps interface_report cert_chain measurements
measurements_nonce"
# rd_err FILE: read FILE whole; false with the strerror text in WERR.
rd_err() {
	if cat "$1" >/dev/null 2>"$WERRF"; then WERR=""; return 0; fi
	read -r WERR <"$WERRF"
	WERR=${WERR##*: }
	return 1
}
# evidence_ok: the evidence of the locked $BDF describes the endpoint.
evidence_ok() {
	local r=$D/tsm/interface_report bar0 g
	g=$(rd "$D/tsm/generation") || { diag "generation unreadable"; return 1; }
	[ "$g" -gt 0 ] 2>/dev/null || { diag "generation '$g'"; return 1; }
	[ "$(rd "$D/tsm/tdisp_version")" = 1.0 ] ||
		{ diag "tdisp_version '$(cat "$D/tsm/tdisp_version")'"; return 1; }
	# TDISP_CAPABILITIES body: 28 bytes, lock flag NO_FW_UPDATE (bit 0) offered.
	[ "$(wc -c <"$D/tsm/tdisp_caps")" = 28 ] &&
		[ $(($(le 2 20 "$D/tsm/tdisp_caps") & 1)) = 1 ] ||
		{ diag "tdisp_caps: $(od -An -tx1 "$D/tsm/tdisp_caps")"; return 1; }
	# Report: NO_UPDATE_AFTER_LOCK, one range (BAR0: 4 pages at BAR0 plus the
	# TSM's reporting offset of 1 << 40, range ID 0), no device-specific data.
	read -r bar0 _ <"$D/resource"
	[ "$(wc -c <"$r")" = 36 ] && [ $(($(le 2 0 "$r") & 1)) = 1 ] &&
		[ "$(le 4 12 "$r")" = 1 ] &&
		[ "$(le 8 16 "$r")" = $(((bar0 + (1 << 40)) / 4096)) ] &&
		[ "$(le 4 24 "$r")" = 4 ] && [ "$(le 2 30 "$r")" = 0 ] &&
		[ "$(le 4 32 "$r")" = 0 ] ||
		{ diag "interface_report: $(od -An -tx1 "$r" | paste -sd' ')"; return 1; }
}
# evidence_gone: every evidence file fails to read with ENXIO.
evidence_gone() {
	local f
	for f in $EVIDENCE; do
		rd_err "$D/tsm/$f" && { diag "$f readable while unlocked"; return 1; }
		[ "$WERR" = "No such device or address" ] || { diag "$f: '$WERR'"; return 1; }
	done
}
evidence_gone
result evidence_unreadable_before_lock $?
lock
evidence_ok
result evidence_readable_when_locked "$([ $? = 0 ] && state_is_locked; echo $?)" "$(state_line)"
# The evidence as hex, for the agent's test fixtures (tools/devsec-agent/tests).
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
diag "evidence $BDF: interface_report $(hex "$D/tsm/interface_report")" \
	"tdisp_caps $(hex "$D/tsm/tdisp_caps") resource0 $(head -1 "$D/resource")"
modes=$(for f in $EVIDENCE; do stat -c %a "$D/tsm/$f"; done | paste -sd' ')
denied=0
for f in $EVIDENCE; do unpriv "cat $D/tsm/$f" && denied=1; done
result evidence_root_only "$([ "$modes" = "400 400 400 400 400 400 400" ] && [ $denied = 0 ]; echo $?)" \
	"modes $modes, unprivileged read denied: $([ $denied = 0 ] && echo yes || echo no)"
g1=$(rd "$D/tsm/generation")
unlock
evidence_gone
result evidence_gone_after_unlock "$([ $? = 0 ] && state_is_pristine; echo $?)" "$(state_line)"
lock
g2=$(rd "$D/tsm/generation")
result evidence_generation_increments \
	"$([ "$g2" -gt "$g1" ] 2>/dev/null && [ "$(rd "$D/tsm/generation")" = "$g2" ]; echo $?)" \
	"generation $g1, then $g2"
# The generation of the earlier lock, a later one, and malformed ones.
expect_err accept_stale_generation_refused "Stale file handle" "$A" "generation=$g1" \
	state_is_locked
expect_err accept_future_generation_refused "Stale file handle" "$A" \
	"generation=$((g2 + 1))" state_is_locked
expect_err accept_generation_empty "Invalid argument" "$A" "generation=" state_is_locked
expect_err accept_generation_not_decimal "Invalid argument" "$A" "generation=0x$g2" \
	state_is_locked
expect_err accept_generation_negative "Invalid argument" "$A" "generation=-$g2" \
	state_is_locked
expect_err accept_generation_trailing "Invalid argument" "$A" "generation=${g2}x" \
	state_is_locked
override
wr "$A" "generation=$g2\n"
result accept_current_generation "$([ -z "$WERR" ] && state_is_running &&
	[ "$(rd "$D/tsm/generation")" = "$g2" ]; echo $?)" "'$WERR'; $(state_line)"
# Accepted: the stale generation is still refused, the current one a no-op.
expect_err accept_stale_generation_when_accepted "Stale file handle" "$A" "generation=$g1" \
	state_is_running
wr "$A" "generation=$g2"
result accept_current_generation_again_noop "$([ -z "$WERR" ] && state_is_running; echo $?)" \
	"'$WERR'; $(state_line)"
reset_dev
# The device changes its report between lock and accept: refused before START.
override
lock
fault "$BDF" report_changed
accept
result accept_report_changed_after_lock_refused \
	"$([ "$WERR" = "Bad message" ] && state_is_locked &&
	dmesg | grep -q "$BDF: TDISP GET_DEVICE_INTERFACE_REPORT: interface report changed"
	echo $?)" "'$WERR'; $(state_line)"
fault "$BDF" none
accept
result accept_report_restored_accepted "$(state_is_running; echo $?)" "'$WERR'; $(state_line)"
reset_dev
# No report at lock: the lock fails and the interface is stopped again.
fault "$BDF" report_missing
expect_err lock_without_report_refused "Invalid argument" "$L" "$TSM" state_is_pristine
dmesg | grep -q "$BDF: TDISP interface 0x100 stopped (no interface report at lock)"
result lock_without_report_stops_interface $?
fault "$BDF" none
cycle
result evidence_faults_cleared_cycle_works $?

#
# Faults injected into the device: accept fails with a specific errno, the
# device is not accepted, the driver does not bind; afterwards a normal
# cycle works again.
#
# A fault of the report is armed before the lock (the evidence of the lock has
# it too; a report that changes after the lock is refused as such, see below),
# any other one after.
fault_case() { # fault_case NAME FAULT ERRTEXT TDISP_STATE_AFTER
	override
	case $2 in report_*) fault "$BDF" "$2" ;; esac
	lock || { not_ok "$1" "lock failed: $WERR"; reset_dev; return; }
	fault "$BDF" "$2"
	if accept; then
		not_ok "$1" "accept succeeded despite fault $2: $(state_line)"
	elif [ "$WERR" != "$3" ]; then
		not_ok "$1" "accept failed with '$WERR', expected '$3'"
	elif [ "$(accepted)" != 0 ] || bound || [ "$(holder)" != "$TSM" ]; then
		not_ok "$1" "not locked, or accepted or bound after failed accept: $(state_line)"
	elif [ "$(tdisp_state)" != "$4" ]; then
		not_ok "$1" "TDISP state $(tdisp_state) after failed accept, expected $4"
	else
		ok "$1"
	fi
	fault "$BDF" none
	reset_dev
}
# A failed accept leaves the function locked and not running.
fault_case fault_report_range_mismatch report_range "Invalid argument" CONFIG_LOCKED
fault_case fault_report_range_count report_count "Invalid argument" CONFIG_LOCKED
fault_case fault_report_truncated report_truncated "Protocol error" CONFIG_LOCKED
# A report fault that only appears after the lock: the report at accept is not
# the evidence of the lock, whatever the change.
fault_after_lock() { # fault_after_lock NAME FAULT ERRTEXT
	override
	lock || { not_ok "$1" "lock failed: $WERR"; reset_dev; return; }
	fault "$BDF" "$2"
	accept
	result "$1" "$([ "$WERR" = "$3" ] && state_is_locked; echo $?)" \
		"accept: '$WERR', expected '$3'; $(state_line)"
	reset_dev
}
fault_after_lock fault_report_range_after_lock report_range "Bad message"
fault_after_lock fault_report_truncated_after_lock report_truncated "Bad message"
fault_after_lock fault_report_missing_after_lock report_missing "Invalid argument"
fault_case fault_start_bad_nonce bad_nonce "Permission denied" CONFIG_LOCKED
fault_case fault_forced_error error "Input/output error" ERROR
fault_case fault_doe_busy doe_busy "Device or resource busy" CONFIG_LOCKED
fault_case fault_doe_timeout doe_timeout "Connection timed out" CONFIG_LOCKED
# The device's SPDM layer refuses the VENDOR_DEFINED request (SPDM ERROR
# UNSUPPORTED_REQUEST, as a responder that wants SPDM negotiation first): at
# accept, and at lock, where nothing may be left locked.
fault_case fault_spdm_refuses spdm_refuses "Operation not supported" CONFIG_LOCKED
fault "$BDF" spdm_refuses
expect_err fault_spdm_refuses_lock "Operation not supported" "$D/tsm/lock" "$TSM"
fault "$BDF" none
# START succeeds, then the interface fails (RUN -> ERROR) before the TSM has
# confirmed RUN: the TSM stops it and locks it again, so the function is never
# left running and not accepted; the next accept (fault spent) succeeds.
fault_case accept_failure_rolls_back error_after_start "Input/output error" CONFIG_LOCKED
# The device has no entropy for a start nonce: LOCK fails, nothing changes.
fault "$BDF" no_entropy
expect_err fault_lock_no_entropy "Resource temporarily unavailable" "$D/tsm/lock" "$TSM"
fault "$BDF" none
# START succeeds, the interface fails, and locking it again fails too (no
# entropy): the TSM leaves it stopped, never running; the PCI core still holds
# the lock, the device is not accepted, and unlock cleans up.
override
lock
fault "$BDF" error_after_start
fault "$BDF" no_entropy
accept
rc=$?
read_state
result accept_failure_relock_fails_stopped \
	"$([ $rc != 0 ] && [ "$WERR" = "Input/output error" ] && [ "$S_TDISP" = CONFIG_UNLOCKED ] &&
	[ "$S_LOCK" = "$TSM" ] && [ "$S_ACCEPT" = 0 ] && ! bound &&
	dmesg | grep -q "$BDF: TDISP interface 0x100 not locked again"; echo $?)" \
	"rc $rc ($WERR), $(state_line)"
fault "$BDF" none
unlock
result accept_failure_relock_fails_unlock_recovers "$(state_is_pristine; echo $?)" \
	"$WERR; $(state_line)"
override
lock && fault "$BDF" error_after_start && ! accept && accept
result accept_after_rollback_succeeds "$(state_is_running; echo $?)" "$WERR; $(state_line)"
reset_dev
cycle
result fault_cleared_cycle_works $?

#
# Interface report layouts (debugfs report_layout, armed before the lock): the
# TSM validates the report by address, ranges anywhere inside the BAR and any
# number of them; NON_TEE and MSI-X (the TSM does not lock MSI-X) ranges are
# legal but shared. The TSM logs how many ranges it found and how many are
# private; accept must succeed and log exactly that.
#
verified_msgs() {
	dmesg | grep -c "$BDF: TDISP interface 0x100 verified ($1 MMIO ranges, $2 private)"
}
#
# Private MMIO: the PCI core registers one "PCI MMIO Encrypted" resource per
# private range, nested in its BAR. enc_lines: those directly below the BARs
# of $BDF in /proc/iomem ("start-end", hex); enc_pages: the same as page
# ranges of BAR0 ("first-last" ...); enc_children: what is nested below them;
# bar0_pages: the page map devsec_pci logged at its last probe.
#
enc_lines() {
	awk -v bdf="${1:-$BDF}" '{
		match($0, /^ */); ind = RLENGTH; split(substr($0, ind + 1), a, " : ")
		if (a[2] == bdf) { bi = ind; inb = 1; next }
		if (inb && ind <= bi) inb = 0
		if (inb && ind == bi + 2 && a[2] == "PCI MMIO Encrypted") print a[1]
	}' /proc/iomem
}
enc_pages() {
	local b0 e0 s e
	read -r b0 e0 _ <"$D/resource"
	enc_lines | while IFS=- read -r s e; do
		((0x$s >= b0 && 0x$e <= e0)) &&
			echo "$(((0x$s - b0) / 4096))-$(((0x$e + 1 - b0) / 4096 - 1))"
	done | paste -sd' '
}
enc_children() {
	awk -v bdf="$BDF" '{
		match($0, /^ */); ind = RLENGTH; split(substr($0, ind + 1), a, " : ")
		if (a[2] == bdf) { bi = ind; inb = 1; next }
		if (inb && ind <= bi) { inb = 0; ine = 0 }
		if (inb && ind == bi + 2) ine = (a[2] == "PCI MMIO Encrypted")
		else if (ine && ind > bi + 2) print a[2]
	}' /proc/iomem | paste -sd' '
}
enc_total() { grep -c "PCI MMIO Encrypted" /proc/iomem; }
bar0_pages() { dmesg | grep "devsec_pci $BDF: BAR0 private pages:" | tail -n1 | sed 's/.*: //'; }

layout_case() { # layout_case NAME LAYOUT RANGES PRIVATE ENC_PAGES BAR0_PAGES
	local before
	before=$(verified_msgs "$3" "$4")
	override
	layout "$BDF" "$2"
	if [ "$(rd "$DBG/$BDF/report_layout")" != "$2" ]; then
		not_ok "$1" "report_layout reads '$(rd "$DBG/$BDF/report_layout")'"
	elif ! lock; then
		not_ok "$1" "lock: $WERR"
	elif ! accept; then
		not_ok "$1" "accept: $WERR; $(state_line)"
	elif ! state_is_running; then
		not_ok "$1" "after accept: $(state_line)"
	elif [ "$(verified_msgs "$3" "$4")" != $((before + 1)) ]; then
		not_ok "$1" "expected $3 ranges, $4 private; log: $(dmesg | grep 'MMIO ranges' | tail -n1)"
	else
		ok "$1"
	fi
	# Exactly the private ranges, as pages of BAR0, and what the driver
	# found private page by page.
	result "${1}_private_mmio" \
		"$([ "$(enc_pages)" = "$5" ] && [ "$(bar0_pages)" = "$6" ]; echo $?)" \
		"private pages '$(enc_pages)' (want '$5'), driver saw '$(bar0_pages)' (want '$6')"
	reset_dev
	result "${1}_private_mmio_released" "$([ -z "$(enc_lines)" ]; echo $?)" \
		"left: $(enc_lines | paste -sd' ')"
	layout "$BDF" bar
}
layout_case report_default_one_range_per_bar bar 1 1 0-3 1111
layout_case report_msix_shared msix 3 1 0-1 1100
layout_case report_non_tee_range_shared non_tee 2 1 1-3 0111
layout_case report_multi_range_bar multi 4 4 "0-0 1-1 2-2 3-3" 1111
layout_case report_range_inside_bar inside 1 1 1-2 0110
# A BAR0 that is not one private range is not requested by devsec_pci (a
# region request across the ranges would fail: one mapping cannot be both
# private and shared).
result private_mmio_partly_private_bar_not_mapped \
	"$(dmesg | grep -q "devsec_pci $BDF: accepted, BAR0 not one private range, not mapped"
	echo $?)"
# An UPDATABLE range: nothing here could follow its changes, so accept is
# refused; the function stays locked, not running, not accepted.
override
layout "$BDF" updatable
lock
accept
result report_updatable_refused \
	"$([ "$WERR" = "Invalid argument" ] && state_is_locked &&
	dmesg | tail -n 20 | grep -q "Updatable"; echo $?)" "accept: '$WERR'; $(state_line)"
reset_dev
layout "$BDF" bar
expect_err report_layout_unknown_refused "Invalid argument" "$DBG/$BDF/report_layout" bogus
result report_layout_unknown_keeps_layout "$([ "$(rd "$DBG/$BDF/report_layout")" = bar ]; echo $?)"

# The interface was stopped behind the TSM's back (a STOP written through the
# config space's DOE mailbox): the device answers INVALID_INTERFACE_STATE with
# no state in it; the TSM asks GET_DEVICE_INTERFACE_STATE, finds
# CONFIG_UNLOCKED (not ERROR) and fails with EBUSY. Unlock recovers.
override
lock
tdisp_by_hand "$D" 0x87 && tdisp_rsp_is 0x07 0 "STOP by hand"
stopped=$?
accept
result accept_after_stop_behind_tsm_is_ebusy \
	"$([ $stopped = 0 ] && [ "$WERR" = "Device or resource busy" ] &&
	[ "$(tdisp_state)" = CONFIG_UNLOCKED ] && [ "$(holder)" = "$TSM" ] &&
	[ "$(accepted)" = 0 ] && ! bound &&
	dmesg | tail -n 20 | grep -q "INVALID_INTERFACE_STATE, interface in state CONFIG_UNLOCKED"
	echo $?)" "accept: '$WERR'; $(state_line)"
unlock
result accept_after_stop_behind_tsm_unlock_recovers "$(state_is_pristine; echo $?)" "$WERR; $(state_line)"
# Locked behind the TSM's back (LOCK written through the config space): the
# TSM's LOCK gets INVALID_INTERFACE_STATE, finds CONFIG_LOCKED and fails with
# EBUSY, holding nothing.
tdisp_by_hand "$D" 0x83 0 0 0 0 0 && tdisp_rsp_is 0x03 32 "LOCK by hand"
locked=$?
lock
result lock_when_locked_behind_tsm_is_ebusy \
	"$([ $locked = 0 ] && [ "$WERR" = "Device or resource busy" ] && [ -z "$(holder)" ] &&
	[ "$(tdisp_state)" = CONFIG_LOCKED ] &&
	dmesg | tail -n 20 | grep -q "INVALID_INTERFACE_STATE, interface in state CONFIG_LOCKED"
	echo $?)" "lock: '$WERR'; $(state_line)"
tdisp_by_hand "$D" 0x87 && tdisp_rsp_is 0x07 0 "STOP by hand"
result lock_when_locked_behind_tsm_stop_recovers "$(state_is_pristine; echo $?)" "$(state_line)"
cycle
result layouts_cycle_works $?

#
# Private MMIO life cycle: registered on accept, nested in BAR0, the driver's
# region request below it; a repeated accept adds nothing; unlock, TSM
# unregistration and removal release everything.
#
override
lock && accept
result private_mmio_in_iomem "$([ "$(enc_pages)" = 0-3 ] && state_is_running; echo $?)" \
	"private pages '$(enc_pages)'; $(state_line); iomem: $(enc_lines | paste -sd' ')"
result private_mmio_driver_region_nested "$([ "$(enc_children)" = devsec_pci ]; echo $?)" \
	"below the private range: '$(enc_children)'"
accept && accept
result private_mmio_no_duplicates_on_reaccept \
	"$([ -z "$WERR" ] && [ "$(enc_lines | wc -l)" = 1 ] && [ "$(enc_total)" = 1 ]; echo $?)" \
	"'$WERR'; $(enc_lines | wc -l) below BAR0, $(enc_total) in all"
unlock
result private_mmio_released_on_unlock "$([ -z "$(enc_lines)" ] && state_is_pristine; echo $?)" \
	"left: $(enc_lines | paste -sd' '); $(state_line)"
override
lock && accept
result private_mmio_registered_again_after_unlock "$([ "$(enc_pages)" = 0-3 ]; echo $?)" \
	"private pages '$(enc_pages)'"
rmmod devsec_tsm
result private_mmio_released_on_tsm_unregister "$([ "$(enc_total)" = 0 ]; echo $?)" \
	"left: $(grep 'PCI MMIO Encrypted' /proc/iomem | paste -sd' ')"
modprobe devsec_tsm && find_tsm
override
lock && accept
n=$(enc_total)
echo 1 >"$D/remove"
result private_mmio_released_on_remove "$([ "$n" = 1 ] && [ ! -e "$D" ] && [ "$(enc_total)" = 0 ]
	echo $?)" "before removal: $n; left: $(grep 'PCI MMIO Encrypted' /proc/iomem | paste -sd' ')"
rmmod devsec_bus && modprobe devsec_bus && sleep 0.2
result private_mmio_remove_bus_reload "$([ -e "$D" ] && state_is_pristine; echo $?)" "$(state_line)"

# A TSM that misuses pci_tsm_mmio_set_private() (devsec_tsm debugfs
# mmio_fault): the PCI core refuses, the TSM fails the accept and stops and
# locks the interface again, and nothing private stays behind.
MMIO_FAULT=/sys/kernel/debug/devsec_tsm/mmio_fault
mmio_fault_case() { # mmio_fault_case NAME NUMBER ERRTEXT LOGLINE
	override
	lock
	echo "$2" >"$MMIO_FAULT"
	accept
	result "private_mmio_fault_$1" \
		"$([ "$WERR" = "$3" ] && state_is_locked && [ -z "$(enc_lines)" ] &&
		dmesg | tail -n 30 | grep -q "$4"; echo $?)" \
		"accept: '$WERR'; $(state_line); left: $(enc_lines | paste -sd' ')"
	echo 0 >"$MMIO_FAULT"
	reset_dev
}
mmio_fault_case unaligned_start 1 "Invalid argument" "empty or not page aligned"
mmio_fault_case unaligned_end 2 "Invalid argument" "empty or not page aligned"
mmio_fault_case empty 3 "Invalid argument" "empty or not page aligned"
mmio_fault_case outside_bars 4 "Invalid argument" "not inside a memory BAR"
mmio_fault_case overlap 5 "Device or resource busy" "conflicts with"
mmio_fault_case twice 7 "Device or resource busy" "private MMIO registered again: -16"
mmio_fault_case fail_after_registration 8 "Input/output error" "failing the accept (fault)"
# All or nothing: a TSM that ignores the refusal accepts with nothing private
# (and devsec_pci maps BAR0 as shared MMIO).
override
lock
echo 6 >"$MMIO_FAULT"
accept
result private_mmio_fault_overlap_ignored_registers_nothing \
	"$([ -z "$WERR" ] && state_is_running && [ -z "$(enc_lines)" ] && [ "$(bar0_pages)" = 0000 ]
	echo $?)" "accept: '$WERR'; $(state_line); left: $(enc_lines | paste -sd' ')"
echo 0 >"$MMIO_FAULT"
reset_dev
# Outside accept the function is not being accepted: ENXIO.
echo 9 >"$MMIO_FAULT"
override
lock
result private_mmio_fault_in_lock_refused \
	"$(state_is_locked && [ -z "$(enc_lines)" ] &&
	dmesg | tail -n 20 | grep -q "$BDF: set_private_mmio() in lock: -6"; echo $?)" "$(state_line)"
echo 0 >"$MMIO_FAULT"
accept
echo 10 >"$MMIO_FAULT"
unlock
result private_mmio_fault_in_unlock_refused \
	"$(state_is_pristine && [ -z "$(enc_lines)" ] &&
	dmesg | tail -n 20 | grep -q "$BDF: set_private_mmio() in unlock: -6"; echo $?)" \
	"$(state_line); left: $(enc_lines | paste -sd' ')"
echo 0 >"$MMIO_FAULT"
cycle
result private_mmio_faults_cleared_cycle_works $?

# A BAR rewritten while CONFIG_LOCKED puts the interface in ERROR and the
# accept fails; restoring the BAR and unlocking recovers.
override
lock
# BAR0 is 64-bit; its upper half (offset 0x14) holds address bits, so
# writing it really moves the BAR.
bar=$(dd if="$D/config" bs=4 skip=5 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
printf '\x00\x00\x00\x00' | dd of="$D/config" bs=4 seek=5 count=1 conv=notrunc 2>/dev/null
st=$(tdisp_state)
accept
rc=$?
printf "$(echo "$bar" | sed 's/../\\x&/g')" |
	dd of="$D/config" bs=4 seek=5 count=1 conv=notrunc 2>/dev/null
result bar_rewrite_while_locked_errors \
	"$([ "$st" = ERROR ] && [ $rc != 0 ] && [ "$(accepted)" = 0 ] && ! bound; echo $?)" \
	"tdisp after BAR write: $st, accept rc $rc ($WERR)"
reset_dev
cycle
result bar_restored_cycle_works $?

# ERROR while RUN: the device stays accepted until the next TSM operation
# (the TSM has no asynchronous notification); unlock then unbinds, rejects
# and stops the interface, and the device can be locked and accepted again.
override
lock && accept
fault "$BDF" error
st=$(tdisp_state)
unlock
result error_while_run_unlock_recovers "$([ "$st" = ERROR ] && [ "$(accepted)" = 0 ] && ! bound &&
	[ "$(tdisp_state)" = CONFIG_UNLOCKED ]; echo $?)" \
	"error state '$st', after unlock: $(state_line)"
cycle
result error_while_run_then_cycle_works $?

#
# Module order and removal while locked/accepted.
#
override
lock && accept
rmmod devsec_tsm
rc=$?
# With no devsec TSM left the tsm/ files are hidden.
result rmmod_tsm_while_accepted \
	"$([ $rc = 0 ] && ! bound && [ "$(tdisp_state)" = CONFIG_UNLOCKED ] &&
	[ ! -e "$D/tsm/lock" ]; echo $?)" \
	"rc $rc, $(state_line), $(ls "$D/tsm" 2>&1 | paste -sd' ')"
modprobe devsec_tsm && find_tsm
override
lock
rmmod devsec_tsm
result rmmod_tsm_while_locked \
	"$([ $? = 0 ] && [ "$(tdisp_state)" = CONFIG_UNLOCKED ]; echo $?)" "$(state_line)"
modprobe devsec_tsm && find_tsm
override
lock && accept
rmmod devsec_bus
result rmmod_bus_while_accepted "$([ $? = 0 ] && [ ! -e "$D" ]; echo $?)"
modprobe devsec_bus && sleep 0.2
cycle
result bus_reload_cycle_works $?
unload_all
result unload_all_modules $?
modprobe devsec_tsm && modprobe devsec_pci && modprobe devsec_bus && find_tsm
cycle
result tsm_first_load_order_cycle_works $?

# A second memory BAR (devsec_bus bar2=1: BAR2, 64-bit, 4 KiB): the report
# covers both BARs and the TSM places a range in each; a BAR0 layout is
# followed by BAR2 whole; a report that leaves BAR2 out is refused.
unload_all
load_all bar2=1
read -r s2 e2 f2 < <(sed -n 3p "$D/resource")
result bar2_enumerated "$( ((e2 - s2 + 1 == 4096 && (f2 & 0x100200) == 0x100200)); echo $?)" \
	"BAR2: $(sed -n 3p "$D/resource")"
before=$(verified_msgs 2 2)
cycle
result report_second_bar "$([ $? = 0 ] && [ "$(verified_msgs 2 2)" = $((before + 1)) ]; echo $?)" \
	"$WERR; $(dmesg | grep 'MMIO ranges' | tail -n1)"
layout_case report_second_bar_after_msix_layout msix 4 2 0-1 1100
fault_case report_second_bar_missing_refused report_count "Invalid argument" CONFIG_LOCKED
unload_all
load_all
cycle
result bar2_unloaded_default_cycle_works $?

# Surprise removal of an accepted endpoint.
override
lock && accept
echo 1 >"$DBG/$BDF/remove"
result surprise_removal_while_accepted \
	"$([ ! -e "$D" ] && ! lsmod | grep -q '^devsec_bus.* -1'; echo $?)"
rmmod devsec_bus && modprobe devsec_bus && sleep 0.2
result surprise_removal_bus_reload "$([ -e "$D" ] && state_is_pristine; echo $?)" "$(state_line)"

#
# Concurrency: four writers race lock/accept/unlock/bind/unbind on one
# device for RACE_SECS; afterwards the invariant holds and a cycle still works.
#
override
racer() {
	local end=$(($(date +%s) + RACE_SECS))
	while [ "$(date +%s)" -lt "$end" ]; do
		case $1 in
		0) printf '%s' "$TSM" >"$D/tsm/lock" ;;
		1) printf 1 >"$D/tsm/accept" ;;
		2) printf '%s' "$TSM" >"$D/tsm/unlock" ;;
		3)
			echo "$BDF" >/sys/bus/pci/drivers_probe
			echo "$BDF" >/sys/bus/pci/drivers/devsec_pci/unbind
			;;
		4)
			# Lockless reader of the state the writers change.
			local v=
			read -r v <"$D/tsm/accept"
			case $v in
			0 | 1) : $((reads++)) ;;
			*) echo "read '$v'" >>/tmp/race.err ;;
			esac
			;;
		esac 2>/dev/null
	done
	[ "$1" = 4 ] && echo "$reads" >/tmp/race.reads
}
# (The invariant is checked once the writers have stopped: two sysfs reads
# from user space cannot sample the state atomically.)
rm -f /tmp/race.err /tmp/race.reads
reads=0
for r in 0 1 2 3 4; do racer $r & done
wait
# tsm/accept read while lock/accept/unlock race: every read is 0 or 1 (in the
# kcsan flavour, any data race on the state fails the run as a KCSAN report).
nreads=$(cat /tmp/race.reads 2>/dev/null || echo 0)
result accepted_read_race "$([ ! -s /tmp/race.err ] && [ "$nreads" -gt 0 ]; echo $?)" \
	"$nreads good reads; $(head -3 /tmp/race.err 2>/dev/null)"
inv=0
if [ "$(accepted)" = 1 ]; then
	[ -n "$(holder)" ] && [ "$(tdisp_state)" = RUN ] || inv=1
fi
bound && [ "$(accepted)" != 1 ] && inv=1
[ -z "$(holder)" ] && [ "$(tdisp_state)" != CONFIG_UNLOCKED ] && inv=1
dmesg | grep -q 'failed to reject' && { inv=1; echo "reject failed" >/tmp/race.err; }
result concurrent_writers_invariant "$inv" "$(state_line) $(head -3 /tmp/race.err 2>/dev/null)"
reset_dev
cycle
result concurrent_writers_then_cycle_works $?

#
# The userspace acceptance agent: lock, read the evidence, verify it against a
# policy, accept the generation verified, bind the policy's driver; refuse
# (and unlock) what the policy does not allow; as the kernel's uevent helper,
# do all of it for a hot-added function, which no driver may bind before.
#
POL=/devsec/policies
# agent ARGS...: run the agent; AOUT its output, ARC its exit status.
agent() { AOUT=$(devsec-agent "$@" 2>&1); ARC=$?; }
# wait_for SECS CMD...: poll CMD every 0.1 s until it succeeds, at most SECS.
wait_for() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		"${@:2}" && return 0
		sleep 0.1
	done
	return 1
}
dmesg_has() { dmesg | grep -q "$1"; }
if ! command -v devsec-agent >/dev/null; then
	for p in agent_accepts_matching_device agent_refuses_unmatched_device \
		agent_refuses_wrong_layout agent_policy_matches_measurements \
		agent_policy_matches_root_fingerprint agent_hotplug_applies_policy \
		legacy_driver_does_not_bind_before_accept; do
		skip $p "devsec-agent is not in this initramfs"
	done
else
	reset_dev
	agent accept --policy $POL/accept.toml "$BDF"
	result agent_accepts_matching_device "$([ $ARC = 0 ] && state_is_running &&
		[[ $AOUT == "devsec-agent: $BDF: accepted (rule \"devsec-ep\", generation "[0-9]*"), driver devsec_pci" ]]
		echo $?)" "exit $ARC: $AOUT; $(state_line)"
	diag "$AOUT"
	agent list
	result agent_lists_accepted_device "$([ $ARC = 0 ] &&
		echo "$AOUT" | grep "^$BDF " | grep -q devsec_pci; echo $?)" "$AOUT"
	reset_dev
	echo >"$D/driver_override"
	# Refusals: exit 1, the verdict says why, the function is left unlocked,
	# unaccepted and without a driver (the agent unlocks what it locked).
	agent accept --policy $POL/unmatched.toml "$BDF"
	result agent_refuses_unmatched_device "$([ $ARC = 1 ] && state_is_pristine &&
		[[ $AOUT == "devsec-agent: $BDF: refused: "* ]]; echo $?)" "exit $ARC: $AOUT; $(state_line)"
	diag "$AOUT"
	# This one the agent locks, reads and verifies before it refuses and unlocks.
	unlocks() { dmesg | grep -c "$BDF: PCI/TSM: unlocked"; }
	u0=$(unlocks)
	agent accept --policy $POL/wrong-layout.toml "$BDF"
	result agent_refuses_wrong_layout "$([ $ARC = 1 ] && state_is_pristine &&
		[[ $AOUT == "devsec-agent: $BDF: refused: "* ]] &&
		[ "$(unlocks)" -gt "$u0" ]; echo $?)" "exit $ARC: $AOUT; $(state_line)"
	diag "$AOUT"
	# The policy names the expected SPDM measurements (the signed
	# tsm/measurements the TSM verified): accepted with the device's values,
	# refused, unlocked, with any other firmware value.
	agent accept --policy $POL/spdm-measurements.toml "$BDF"
	ok1=$([ $ARC = 0 ] && state_is_running &&
		[[ $AOUT == *"accepted (rule \"devsec-ep-measured\""* ]]; echo $?)
	a1=$AOUT
	reset_dev
	echo >"$D/driver_override"
	agent accept --policy $POL/spdm-wrong-measurement.toml "$BDF"
	result agent_policy_matches_measurements "$([ "$ok1" = 0 ] && [ $ARC = 1 ] &&
		state_is_pristine && [[ $AOUT == *"measurement block 2 differs from the rule"* ]]
		echo $?)" "matching: $a1; other firmware: exit $ARC: $AOUT; $(state_line)"
	reset_dev
	echo >"$D/driver_override"
	# The policy names the root of the device's certificate chain by its
	# SHA-384 fingerprint (per build: substituted here): accepted with the
	# trusted root's, refused with the untrusted root's.
	rootpol() { # rootpol CERT OUT
		sed "s/@ROOT_SHA384@/$(devsec-agent fingerprint "$1")/" "$POL/spdm-root.toml.in" >"$2"
	}
	rootpol "$SPDM_ROOT" /tmp/spdm-root.toml
	rootpol /devsec/spdm/untrusted-root.der /tmp/spdm-other-root.toml
	agent accept --policy /tmp/spdm-root.toml "$BDF"
	ok1=$([ $ARC = 0 ] && state_is_running &&
		[[ $AOUT == *"accepted (rule \"devsec-ep-root\""* ]]; echo $?)
	a1=$AOUT
	reset_dev
	echo >"$D/driver_override"
	agent accept --policy /tmp/spdm-other-root.toml "$BDF"
	result agent_policy_matches_root_fingerprint "$([ "$ok1" = 0 ] && [ $ARC = 1 ] &&
		state_is_pristine && [[ $AOUT == *"a root the rule does not name"* ]]
		echo $?)" "trusted root: $a1; other root: exit $ARC: $AOUT; $(state_line)"
	reset_dev
	echo >"$D/driver_override"
	# Bad policy files: exit 2, a clear message, nothing touched.
	for c in "bad-syntax:line" "bad-unknown-key:unknown field" "empty:no rules"; do
		agent accept --policy "$POL/${c%%:*}.toml" "$BDF"
		result "agent_policy_${c%%:*}_refused" "$([ $ARC = 2 ] && state_is_pristine &&
			[[ $AOUT == *"${c#*:}"* ]]; echo $?)" "exit $ARC: $AOUT; $(state_line)"
	done
	agent check-policy $POL/accept.toml
	result agent_check_policy_good "$([ $ARC = 0 ]; echo $?)" "$AOUT"

	# Hotplug: the test kernel has no networking, so no uevent socket for
	# mdev or udev, and no uevent helper; the agent watches sysfs instead and
	# handles every TEE-capable function that appears as its uevent helper
	# would. A hot-added endpoint ends accepted and bound with no manual step.
	mkdir -p /etc/devsec-agent
	WATCH_PID=
	hotplug_with() { # hotplug_with POLICY: reload the bus with the agent watching
		cp "$POL/$1.toml" /etc/devsec-agent/policy.toml
		rmmod devsec_bus 2>/dev/null
		devsec-agent watch 2>>/tmp/watch.log &
		WATCH_PID=$!
		modprobe devsec_bus
	}
	hotplug_off() { kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null; }
	hotplug_with accept
	wait_for 30 state_is_running
	result agent_hotplug_applies_policy "$([ $? = 0 ] &&
		dmesg | grep -q "devsec-agent: $BDF: accepted (rule \"devsec-ep\""; echo $?)" \
		"$(state_line); $(dmesg | grep devsec-agent | tail -2); $(tail -3 /tmp/watch.log)"
	hotplug_off
	reset_dev
	# Refused at hotplug: the bind gate stays, so a driver that does not wait
	# for acceptance (pci-stub, given the device ID with new_id) does not bind.
	hotplug_with wrong-layout
	wait_for 30 dmesg_has "devsec-agent: $BDF: refused"
	hotplug_off
	held=$(cat "$D/driver_override")
	if [ -d /sys/bus/pci/drivers/pci-stub ]; then
		echo "1b36 0d5c" >/sys/bus/pci/drivers/pci-stub/new_id
		result legacy_driver_does_not_bind_before_accept \
			"$([ "$held" = devsec-agent-hold ] && state_is_pristine; echo $?)" \
			"driver_override '$held'; $(state_line)"
		echo "1b36 0d5c" >/sys/bus/pci/drivers/pci-stub/remove_id
	else
		skip legacy_driver_does_not_bind_before_accept "pci-stub not available"
	fi
	# The agent accepts the held function on request, and only then it binds.
	agent accept --policy $POL/accept.toml "$BDF"
	result agent_accepts_held_device "$([ $ARC = 0 ] && state_is_running; echo $?)" \
		"exit $ARC: $AOUT; $(state_line)"
	reset_dev
	echo >"$D/driver_override"
fi

#
# SR-IOV: the endpoint is a PF with $NVF virtual functions, each a TDISP
# interface of its own whose messages go through the PF's DOE mailbox. The
# PF driver devsec_pf waits for the PF's acceptance, then enables the VFs;
# unbinding it disables them. Removing VFs runs the PF driver's ->remove()
# path into pci_destroy_dev() of each VF, which takes pci_tsm_rwsem: none of
# this may run under pci_tsm_rwsem (it would deadlock), so every step that
# can reach it runs under 'within', and a hang is a failed point.
#
NVF=3
PF=$BDF
VFS="10000:01:00.1 10000:01:00.2 10000:01:00.3"
# within SECS CMD...: CMD's status, or 124 if it has not finished after SECS
# seconds; it is then left behind (a task stuck in the kernel cannot be
# killed) and the suite goes on.
within() {
	local secs=$1 pid i
	shift
	"$@" &
	pid=$!
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; return; }
		sleep 0.1
	done
	diag "still running after ${secs}s: $*"
	return 124
}
# hung NAME: NAME's step is stuck in the kernel (most likely holding a lock
# that every sysfs access below would wait for): fail NAME and end the suite
# here, so the guest finishes and shows what passed.
hung() {
	not_ok "$1" "stuck for 60 s in the kernel; the remaining points are not run"
	ktap_end
	exit 1
}
pf_bound() { [ -e "/sys/bus/pci/drivers/devsec_pf/$PF" ]; }
# vf_count: VF devices present.
vf_count() { ls -d /sys/bus/pci/devices/10000:01:00.[1-7] 2>/dev/null | grep -c .; }
# stopped_msgs BDF: how often the TSM stopped (unlocked) BDF's interface.
stopped_msgs() { dmesg | grep -c "$1: TDISP interface 0x[0-9a-f]* stopped (CONFIG_UNLOCKED)"; }
# pf_up: lock and accept the PF with devsec_pf waiting for it; VFs appear.
pf_up() {
	echo devsec_pf >"$(dev "$PF")/driver_override"
	lock "$PF" || { diag "PF lock: $WERR"; return 1; }
	accept "$PF" || { diag "PF accept: $WERR"; return 1; }
	pf_bound && [ "$(vf_count)" = $NVF ] ||
		{ diag "PF: $(state_line "$PF"), $(vf_count) VFs"; return 1; }
}
# vfs_up: lock, accept and bind devsec_pci on every VF, each step checked.
vfs_up() {
	local v
	for v in $VFS; do
		override "$v"
		lock "$v" || { diag "VF $v lock: $WERR"; return 1; }
		state_is_locked "$v" || { diag "VF $v after lock: $(state_line "$v")"; return 1; }
		accept "$v" || { diag "VF $v accept: $WERR"; return 1; }
		state_is_running "$v" ||
			{ diag "VF $v after accept: $(state_line "$v")"; return 1; }
	done
}
# vf_stops_before: record how often each VF was stopped so far.
declare -A VSTOP
vf_stops_before() { local v; for v in $VFS; do VSTOP[$v]=$(stopped_msgs "$v"); done; }
# vfs_torn_down: no VF left, each stopped once more by the TSM since
# vf_stops_before, and every VF interface CONFIG_UNLOCKED.
vfs_torn_down() {
	local v
	[ "$(vf_count)" = 0 ] || { diag "$(vf_count) VFs left"; return 1; }
	for v in $VFS; do
		[ "$(stopped_msgs "$v")" = $((VSTOP[$v] + 1)) ] ||
			{
				diag "VF $v: stopped ${VSTOP[$v]} -> $(stopped_msgs "$v") times"
				return 1
			}
		[ "$(tdisp_state "$v")" = CONFIG_UNLOCKED ] ||
			{ diag "VF $v: tdisp $(tdisp_state "$v")"; return 1; }
	done
}
# pf_still_accepted: PF locked, accepted, TDISP RUN (unbinding its driver
# does not take it out of the TEE).
pf_still_accepted() {
	read_state "$PF"
	[ "$S_LOCK" = "$TSM" ] && [ "$S_ACCEPT" = 1 ] && [ "$S_TDISP" = RUN ]
}

# Bad vfs= values: more VFs than functions in a slot, or VFs with more
# endpoints than slots (VFs take the functions of their PF's slot).
rmmod devsec_bus
modprobe devsec_bus vfs=8 2>/dev/null
r1=$?
modprobe devsec_bus endpoints=33 vfs=1 2>/dev/null
r2=$?
result sriov_bad_vfs_parameter_refused \
	"$([ $r1 != 0 ] && [ $r2 != 0 ] && [ ! -d /sys/module/devsec_bus ] &&
	dmesg | grep -q 'vfs=8 needs vfs <= 7 and endpoints <= 32'; echo $?)" \
	"vfs=8: rc $r1, endpoints=33 vfs=1: rc $r2, $(lsmod | grep devsec_bus)"
modprobe devsec_bus vfs=$NVF && modprobe devsec_pf && sleep 0.2
tv=$(rd "$(dev "$PF")/sriov_totalvfs")
nv0=$(vf_count)
pf_up
rc=$?
ok_vfs=0
for v in $VFS; do
	d=$(dev "$v")
	[ "$(rd "$d/device")" = 0x0d5d ] && [ "$(readlink "$d/physfn")" = ../10000:01:00.0 ] &&
		bar0_ok "$d" && [ -e "$d/tsm/lock" ] && state_is_pristine "$v" &&
		ok_vfs=$((ok_vfs + 1))
done
result sriov_enable_vfs_enumerate \
	"$([ "$tv" = $NVF ] && [ "$nv0" = 0 ] && [ $rc = 0 ] && [ $ok_vfs = $NVF ] &&
	[ "$(rd "$(dev "$PF")/sriov_numvfs")" = $NVF ]; echo $?)" \
	"totalvfs '$tv', VFs before $nv0, pf_up rc $rc, $ok_vfs of $NVF VFs as expected"

# One VF through its life cycle; the PF and the other VFs are untouched.
v1=${VFS%% *}
cycle "$v1"
rc=$?
others=0
for v in ${VFS#* }; do state_is_pristine "$v" || others=1; done
result sriov_vf_lifecycle "$([ $rc = 0 ] && [ $others = 0 ] && pf_still_accepted; echo $?)" \
	"rc $rc, others $others, PF: $(state_line "$PF")"

# A VF's evidence is its own: its report names its own VF BAR0 (through the
# PF's mailbox), and the agent accepts it under the same policy.
vd=$(dev "$v1")
lock "$v1"
read -r vbar0 _ <"$vd/resource"
vrep=$vd/tsm/interface_report
result sriov_vf_evidence "$([ "$(wc -c <"$vrep")" = 36 ] &&
	[ "$(le 8 16 "$vrep")" = $(((vbar0 + (1 << 40)) / 4096)) ] &&
	[ "$(rd "$vd/tsm/generation")" -gt "$(rd "$(dev "$PF")/tsm/generation")" ]; echo $?)" \
	"$(od -An -tx1 "$vrep" | paste -sd' '); $(state_line "$v1")"
unlock "$v1"
if command -v devsec-agent >/dev/null; then
	agent accept --policy $POL/accept.toml "$v1"
	result sriov_vf_agent_accepts "$([ $ARC = 0 ] && state_is_running "$v1"; echo $?)" \
		"exit $ARC: $AOUT; $(state_line "$v1")"
	reset_dev "$v1"
	echo >"$vd/driver_override"
else
	skip sriov_vf_agent_accepts "devsec-agent is not in this initramfs"
fi

# A refused START on one VF leaves that VF locked, the others and the PF as
# they were.
override "$v1"
lock "$v1"
fault "$v1" bad_nonce
accept "$v1"
rc=$?
result sriov_vf_refused_accept_isolated \
	"$([ $rc != 0 ] && [ "$WERR" = "Permission denied" ] && state_is_locked "$v1" &&
	state_is_pristine "${VFS##* }" && pf_still_accepted; echo $?)" \
	"rc $rc ($WERR), VF: $(state_line "$v1"), PF: $(state_line "$PF")"
reset_dev "$v1"

# Clearing VF MSE in the PF's SR-IOV control register is a configuration
# change for every running VF: ERROR, while the PF keeps running.
vfs_up
ctl=$(cfg_dword "$(dev "$PF")" $((0x208)))
cfg_wr "$(dev "$PF")" $((0x208)) $((ctl & ~0x8))
nerr=0
for v in $VFS; do [ "$(tdisp_state "$v")" = ERROR ] && nerr=$((nerr + 1)); done
cfg_wr "$(dev "$PF")" $((0x208)) "$ctl"
result sriov_vf_mse_clear_is_config_change \
	"$([ $nerr = $NVF ] && pf_still_accepted; echo $?)" \
	"$nerr of $NVF VFs in ERROR; PF: $(state_line "$PF")"
for v in $VFS; do reset_dev "$v"; done

# Unbind the PF driver while every VF is accepted and bound: the VFs are
# unbound, rejected, unlocked and removed; the PF stays accepted.
vfs_up
rc=$?
vf_stops_before
within 60 sh -c "echo $PF >/sys/bus/pci/drivers/devsec_pf/unbind"
rc2=$?
[ $rc2 = 124 ] && hung sriov_pf_remove_while_vfs_accepted
result sriov_pf_remove_while_vfs_accepted \
	"$([ $rc = 0 ] && [ $rc2 = 0 ] && ! pf_bound && vfs_torn_down && pf_still_accepted
	echo $?)" \
	"vfs_up rc $rc, unbind rc $rc2, PF: $(state_line "$PF")"
# Bound again, the PF driver brings back VFs that start over, unlocked.
echo "$PF" >/sys/bus/pci/drivers_probe 2>/dev/null
nv=0
for v in $VFS; do state_is_pristine "$v" && nv=$((nv + 1)); done
result sriov_pf_rebind_vfs_pristine "$(pf_bound && [ $nv = $NVF ]; echo $?)" \
	"PF: $(state_line "$PF"), $nv of $NVF VFs pristine"

# Unload the PF driver's module while every VF is accepted.
vfs_up
rc=$?
vf_stops_before
within 60 rmmod devsec_pf
rc2=$?
[ $rc2 = 124 ] && hung sriov_pf_remove_module_unload_while_vfs_accepted
result sriov_pf_remove_module_unload_while_vfs_accepted \
	"$([ $rc = 0 ] && [ $rc2 = 0 ] && vfs_torn_down && pf_still_accepted; echo $?)" \
	"vfs_up rc $rc, rmmod rc $rc2, PF: $(state_line "$PF")"
modprobe devsec_pf
echo "$PF" >/sys/bus/pci/drivers_probe 2>/dev/null

# Unlock the PF while every VF is accepted: the PF driver's ->remove()
# disables SR-IOV, and each VF's removal takes pci_tsm_rwsem, so the PF's
# driver must be released with no lock held.
vfs_up
rc=$?
vf_stops_before
within 60 unlock "$PF"
rc2=$?
[ $rc2 = 124 ] && hung sriov_pf_unlock_while_vfs_accepted
read_state "$PF"
result sriov_pf_unlock_while_vfs_accepted \
	"$([ $rc = 0 ] && [ $rc2 = 0 ] && vfs_torn_down && ! pf_bound && [ -z "$S_LOCK" ] &&
	[ "$S_ACCEPT" = 0 ] && [ "$S_TDISP" = CONFIG_UNLOCKED ]; echo $?)" \
	"vfs_up rc $rc, unlock rc $rc2, PF: $(state_line "$PF")"

# Unregister the TSM while the PF and every VF are accepted: everything is
# unbound, rejected and unlocked, the VFs are removed on the way.
pf_up && vfs_up
rc=$?
vf_stops_before
within 60 rmmod devsec_tsm
rc2=$?
[ $rc2 = 124 ] && hung sriov_unregister_tsm_while_vfs_accepted
read_state "$PF"
result sriov_unregister_tsm_while_vfs_accepted \
	"$([ $rc = 0 ] && [ $rc2 = 0 ] && vfs_torn_down && ! pf_bound && [ -z "$S_LOCK" ] &&
	[ "$S_TDISP" = CONFIG_UNLOCKED ] && [ ! -e "$(dev "$PF")/tsm/lock" ]; echo $?)" \
	"pf_up/vfs_up rc $rc, rmmod rc $rc2, PF: $(state_line "$PF")"
modprobe devsec_tsm && find_tsm
echo "" >"$(dev "$PF")/driver_override"
rmmod devsec_pf
rmmod devsec_bus && modprobe devsec_bus && sleep 0.2
cycle
result sriov_then_cycle_works $?

#
# Scale: $MANY endpoints, all accepted and bound, then all unlocked.
#
rmmod devsec_bus && modprobe devsec_bus endpoints=$MANY && sleep 0.5
bdfs=$(ls -d /sys/bus/pci/devices/10000:01:* 2>/dev/null | xargs -n1 basename)
n=$(echo "$bdfs" | grep -c .)
result scale_${MANY}_endpoints_enumerated "$([ "$n" = $MANY ]; echo $?)" "found $n"
for b in $bdfs; do override "$b"; done
# Every endpoint waits for acceptance, parked off the driver core's
# deferred-probe retries, and is still listed with its reason.
np=$(grep -c '^10000:01:.*TEE acceptance pending' "$DEFERRED")
result parked_reason_visible "$([ "$np" = $MANY ]; echo $?)" "$np of $MANY listed"
# Binding an unrelated driver (pci-stub, on the last endpoint) runs the
# deferred-probe trigger, which must not probe the parked devices.
bl=$(echo "$bdfs" | tail -1)
a0=$(probe_attempts)
echo pci-stub >"$(dev "$bl")/driver_override"
echo "$bl" >/sys/bus/pci/drivers_probe 2>/dev/null
sleep 0.5
drv=$(basename "$(readlink "$(dev "$bl")/driver")")
result parked_no_retry_on_unrelated_bind \
	"$([ "$drv" = pci-stub ] && [ "$(probe_attempts)" = "$a0" ]; echo $?)" \
	"bound to '$drv', probe attempts $a0 -> $(probe_attempts)"
echo "$bl" >"$(dev "$bl")/driver/unbind" 2>/dev/null
override "$bl"
# Re-probe cost: all $MANY deferred; accepting one probes that one device once.
b0=$(echo "$bdfs" | head -1)
a0=$(probe_attempts)
lock "$b0" && accept "$b0"
a1=$(probe_attempts)
# The accept write probes just this device, synchronously: the driver is
# bound when the write returns, and the driver core's post-bind trigger,
# which runs in the background, leaves the parked devices alone.
result accept_binds_synchronously_with_$((MANY - 1))_deferred "$(bound "$b0"; echo $?)" \
	"$(state_line "$b0")"
sleep 1
result parked_probe_once_per_accept "$([ "$(($(probe_attempts) - a0))" = 1 ]; echo $?)" \
	"$(($(probe_attempts) - a0)) devsec_pci probe calls for one accept," \
	"$((MANY - 1)) others deferred"
t0=${EPOCHREALTIME/./}
i=1
for b in $bdfs; do
	[ "$b" = "$b0" ] && continue
	lock "$b" && accept "$b"
	i=$((i + 1))
	[ $i = 16 ] && t16=${EPOCHREALTIME/./}
done
t1=${EPOCHREALTIME/./}
sleep 1
result parked_n_accepts_n_probes "$([ "$(($(probe_attempts) - a0))" = $MANY ]; echo $?)" \
	"$(($(probe_attempts) - a0)) devsec_pci probe calls for $MANY accepts"
if ((MANY > 16)); then
	diag "lock+accept, endpoints 2..16: $(((t16 - t0) / 15000)) ms per device;" \
		"17..$MANY: $(((t1 - t16) / ((MANY - 16) * 1000))) ms per device"
fi
nb=0
for b in $bdfs; do bound "$b" && nb=$((nb + 1)); done
result scale_${MANY}_all_bound "$([ "$nb" = $MANY ]; echo $?)" "bound $nb of $MANY"
diag "lock+accept of $((MANY - 1)) endpoints: $(((t1 - t0) / 1000)) ms"
for b in $bdfs; do unlock "$b"; done
nb=0
for b in $bdfs; do { bound "$b" || [ "$(accepted "$b")" != 0 ]; } && nb=$((nb + 1)); done
result scale_${MANY}_all_unlocked "$([ "$nb" = 0 ]; echo $?)" "$nb still bound or accepted"
rmmod devsec_bus && modprobe devsec_bus

unload_all
result final_unload "$?"
result final_no_tsm_left "$(! ls -d /sys/class/tsm/tsm* >/dev/null 2>&1; echo $?)" \
	"$(ls /sys/class/tsm/ 2>&1 | paste -sd' ')"
result final_no_private_mmio_left "$([ "$(enc_total)" = 0 ]; echo $?)" \
	"$(grep 'PCI MMIO Encrypted' /proc/iomem | paste -sd' ')"

if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(grep -c 'unreferenced object' /sys/kernel/debug/kmemleak)
	result kmemleak_clean "$([ "$leaks" = 0 ]; echo $?)" "$leaks unreferenced objects"
fi

ktap_end
