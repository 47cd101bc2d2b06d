#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh: everything 'make test' does:
#   toolchain, pinned source, prepared tree;
#   devsec-agent: static build for the guests, cargo test, clippy, rustfmt;
#   the TDISP library on the host: KUnit cases as cargo tests, a short seeded
#   fuzzing run, clippy, rustfmt (in the background, beside the builds);
#   normal flavour: build, boot, KUnit + guest suite;  host checks;
#   debug flavour (lockdep, KASAN, kmemleak): build, boot, same suites;
#   kcsan flavour (KCSAN, which excludes KASAN): build, boot, same suites;
#   build variants CONFIDENTIAL_DEVICES=n and RUST=n;
# then one summary of all KTAP results ending in "N passed, N failed".
#
# A TCG guest running a shell script keeps about one host CPU busy, so the
# phases are pipelined on the 2-CPU budget: the normal guest and the host
# checks run while the debug kernel builds, and the debug guest runs while
# the build variants compile.  The debug guest is the longest phase of a
# warm run, so it runs at normal priority, the normal guest at nice 5, and
# builds and host checks that overlap a guest at nice 10 (a starved vCPU
# holding a guest spinlock stalls the other one, so guests go first).
#
# COCO_FLAVOURS="normal" (for example) limits the run during development.
#
# A guest whose inputs did not change since its last passing run (same
# kernel image, same initramfs contents: modules and guest scripts, same
# runner, timeout and options) is not booted again: its results are reused
# and marked as such, as make does not rebuild what is up to date. A run
# with any failed point is never reused. COCO_RERUN=1 boots every guest
# (CI does).

here=$(dirname "$0")
. "$here/common.sh"

flavours=" ${COCO_FLAVOURS:-normal debug kcsan nocc norust} "
for f in $flavours; do
	case $f in normal | debug | kcsan | nocc | norust) ;; *) die "unknown flavour $f" ;; esac
done
want() { [[ $flavours == *" $1 "* ]]; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -n 9 ||
	die "another 'make test' or 'make run' is using $CACHE; wait for it (or set COCO_CACHE)"

"$here/setup.sh"
"$here/fetch-kernel.sh"
python3 "$here/prepare-tree.py" "$OVERLAY" "$PRISTINE" "$KSRC"

set +e
res=$BUILD/results
rm -rf "$res"
mkdir -p "$res/steps"
t_start=$(date +%s)

# step NAME CMD...: run one phase; its status becomes a host test point and
# its wall time a line in $res/timings.  Safe to use in background jobs.
step() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	"$@"
	rc=$?
	echo "$name $(($(date +%s) - t0))" >>"$res/timings"
	echo "$rc" >"$res/steps/$name"
	return $rc
}
order=()

# guest_inputs FLAVOUR TIMEOUT: a digest of everything a guest run depends on.
guest_inputs() {
	local out=$BUILD/$1
	{
		sha256sum <"$out/arch/x86/boot/bzImage"
		(cd "$out/initramfs.d" && find . -type f -print0 | LC_ALL=C sort -z |
			xargs -0 sha256sum && find . -type l -printf '%p -> %l\n' | LC_ALL=C sort)
		sha256sum <"$here/run-vm.sh"
		echo "timeout=$2 append=${COCO_APPEND:-} kvm=${COCO_KVM:-0}"
	} | sha256sum | cut -d' ' -f1
}

# guest FLAVOUR: boot the flavour's kernel and keep its guest log (and, for
# the normal flavour, run the host checks against its build).
guest() {
	local f=$1 tmo=900 prio=(nice -n 5) key passed=$BUILD/$1/guest.passed
	case $f in debug | kcsan) tmo=1500 prio=() ;; esac
	key=$(guest_inputs "$f" "$tmo")
	if [ "${COCO_RERUN:-0}" != 1 ] && [ -f "$BUILD/$f/guest.log" ] &&
		[ "$(cat "$passed" 2>/dev/null)" = "$key" ]; then
		echo "reused: inputs unchanged since the passing run of" \
			"$(date -u -r "$passed" '+%F %H:%M UTC')" >"$res/steps/vm_${f}_clean.note"
		echo "vm_${f}_clean 0" >>"$res/timings"
		echo 0 >"$res/steps/vm_${f}_clean"
	else
		rm -f "$passed"
		step "vm_${f}_clean" "${prio[@]}" "$here/run-vm.sh" "$f" test "$tmo" &&
			! grep -aqE '^[[:space:]]*not ok' "$BUILD/$f/guest.log" &&
			echo "$key" >"$passed"
	fi
	# Why it failed (timeout, splat, ...), and the results it got to.
	cp "$BUILD/$f/vm-failure" "$res/steps/vm_${f}_clean.why" 2>/dev/null
	cp "$BUILD/$f/guest.log" "$res/$f.log" 2>/dev/null
	if [ "$f" = normal ]; then
		nice -n 10 "$here/check.sh" >"$res/check.ktap"
	fi
	return 0
}

# build_kernel FLAVOUR: build and pack; true when the flavour can boot.
build_kernel() {
	order+=("build_$1" "initramfs_$1")
	step "build_$1" "${nice[@]}" "$here/build.sh" "$1" &&
		step "initramfs_$1" "$here/mkinitramfs.sh" "$1"
}

# The acceptance agent: host tests, and the static binary the guests run.
order+=(agent)
step agent "$here/agent.sh" >"$res/agent.ktap"

# The TDISP library on the host; about half a minute of one CPU.
jobs_bg=()
order+=(tdisp_host)
step tdisp_host nice -n 10 "$here/tdisp-host.sh" >"$res/tdisp.ktap" &
jobs_bg+=($!)

nice=()
for f in normal debug kcsan; do
	want $f || continue
	if build_kernel $f; then
		order+=("vm_${f}_clean")
		guest $f &
		jobs_bg+=($!)
		nice=(nice -n 10)
	fi
done
for f in nocc norust; do
	want $f || continue
	order+=("build_variant_$f")
	step "build_variant_$f" "${nice[@]}" "$here/build.sh" "$f" || continue
	# CONFIDENTIAL_DEVICES=n boots too: the guest suite checks the stubs.
	if [ $f = nocc ]; then
		order+=("initramfs_nocc")
		if step initramfs_nocc "$here/mkinitramfs.sh" nocc; then
			order+=("vm_nocc_clean")
			guest nocc &
			jobs_bg+=($!)
		fi
	fi
done
wait "${jobs_bg[@]}"

{
	echo "KTAP version 1"
	echo "1..${#order[@]}"
	i=0
	for s in "${order[@]}"; do
		i=$((i + 1))
		note=$(cat "$res/steps/$s.note" 2>/dev/null)
		if [ "$(cat "$res/steps/$s" 2>/dev/null)" = 0 ]; then
			echo "ok $i $s${note:+ # $note}"
		elif [ -s "$res/steps/$s.why" ]; then
			echo "not ok $i $s # $(head -n1 "$res/steps/$s.why")"
		else
			echo "not ok $i $s"
		fi
	done
} >"$res/host.ktap"

ktap_args=("host=$res/host.ktap" "agent=$res/agent.ktap" "tdisp=$res/tdisp.ktap")
for f in normal debug kcsan nocc; do
	[ -f "$res/$f.log" ] && ktap_args+=("$f=$res/$f.log")
	[ $f = normal ] && [ -f "$res/check.ktap" ] && ktap_args+=("check=$res/check.ktap")
done

wall=$(($(date +%s) - t_start))
echo "total $wall" >>"$res/timings"
echo "(phase timings in seconds: $(paste -sd' ' "$res/timings"))" >&2
# CPU time of everything this run started (user + system of waited-for
# children, QEMU included), against the wall time: on 2 CPUs a pipeline that
# keeps both busy has wall <= 1.15 * cpu / 2.
times >"$res/times" # a builtin with a redirection: no fork, this shell's children
cpu=$(tail -1 "$res/times" | python3 -c '
import re, sys
t = 0.0
for m, s in re.findall(r"(\d+)m([\d.]+)s", sys.stdin.read()):
    t += int(m) * 60 + float(s)
print(round(t))')
echo "(wall ${wall} s, CPU ${cpu} s, CPU/2 $((cpu / 2)) s," \
	"wall/(CPU/2) $(python3 -c "print(round($wall / max($cpu / 2, 1), 2))"))" >&2
reused=$(cd "$res/steps" && ls -- *.note 2>/dev/null |
	sed 's/^vm_\(.*\)_clean\.note$/\1/' | paste -sd' ')
[ -n "$reused" ] &&
	echo "(guest results reused, inputs unchanged since they passed: $reused;" \
		"COCO_RERUN=1 boots them again)" >&2
echo
echo "Per-test results:"
# The summary's last line, "N passed, N failed[, N skipped]", ends the output.
python3 "$here/ktap.py" "${ktap_args[@]}" | tee "$res/summary.txt"
exit "${PIPESTATUS[0]}"
