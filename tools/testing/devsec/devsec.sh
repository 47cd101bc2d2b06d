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

echo "KTAP version 1"
echo "1..${#results[@]}"
printf '%s\n' "${results[@]}"
