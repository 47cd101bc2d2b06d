#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh: everything 'make test' does, in order:
#   toolchain, pinned source, prepared tree;
#   normal flavour: build, boot, KUnit + guest suite;  host checks;
#   debug flavour (lockdep, KASAN, kmemleak): build, boot, same suites;
#   build variants CONFIDENTIAL_DEVICES=n and RUST=n;
# then one summary of all KTAP results ending in "N passed, N failed".
#
# COCO_FLAVOURS="normal" (for example) limits the run during development.

here=$(dirname "$0")
. "$here/common.sh"

flavours=${COCO_FLAVOURS:-normal debug nocc norust}
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -n 9 || die "another 'make test' or 'make run' is using $CACHE; wait for it (or set COCO_CACHE)"

"$here/setup.sh"
"$here/fetch-kernel.sh"
python3 "$here/prepare-tree.py" "$OVERLAY" "$PRISTINE" "$KSRC"

set +e
res=$BUILD/results
rm -rf "$res"
mkdir -p "$res"
host=()
step() { # step NAME CMD...: run one phase, record a host test point and its time
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	"$@"
	rc=$?
	echo "$name $(($(date +%s) - t0))" >>"$res/timings"
	if [ $rc = 0 ]; then host+=("ok ${#host[@]} $name"); else host+=("not ok ${#host[@]} $name"); fi
	return $rc
}
host+=("")  # numbering starts at 1

ktap_args=()
for f in $flavours; do
	case $f in
	normal | debug)
		tmo=300
		[ $f = debug ] && tmo=1200
		if step "build_$f" "$here/build.sh" $f &&
		   step "initramfs_$f" "$here/mkinitramfs.sh" $f; then
			step "vm_${f}_clean" "$here/run-vm.sh" $f test $tmo
			cp "$BUILD/$f/guest.log" "$res/$f.log" 2>/dev/null &&
				ktap_args+=("$f=$res/$f.log")
			if [ $f = normal ]; then
				"$here/check.sh" >"$res/check.ktap"
				ktap_args+=("check=$res/check.ktap")
			fi
		fi
		;;
	nocc | norust)
		step "build_variant_$f" "$here/build.sh" $f
		;;
	*) die "unknown flavour $f" ;;
	esac
done

{
	echo "KTAP version 1"
	echo "1..$((${#host[@]} - 1))"
	printf '%s\n' "${host[@]:1}"
} >"$res/host.ktap"

echo
echo "Per-test results:"
python3 "$here/ktap.py" "host=$res/host.ktap" "${ktap_args[@]}" | tee "$res/summary.txt"
rc=${PIPESTATUS[0]}
echo "(phase timings in seconds: $(paste -sd' ' "$res/timings"))" >&2
exit $rc
