#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# series.sh [--build-each]: export the overlay as a git format-patch series
# on the pinned base (out/series/), check that every patch applies with
# git am to a fresh copy of the base and run checkpatch --strict on it.
# With --build-each, also build every prefix of the series (slow).

here=$(dirname "$0")
. "$here/common.sh"

out=$OVERLAY/out/series
work=$CACHE/series
mkdir -p "$work"
python3 "$here/series.py" "$OVERLAY" "$PRISTINE" "$work" "$out"

set +e
repo=$work/linux
rc=0
# git am onto the base, in a throwaway worktree.
am=$work/am-check
git -C "$repo" worktree remove -f "$am" 2>/dev/null || true
git -C "$repo" worktree prune
rm -rf "$am"
git -C "$repo" worktree add -q --detach "$am" v7.3.4-debian
patches=$(ls "$out"/0*.patch | grep -v /0000-)
if git -C "$am" -c user.name=am -c user.email=am@invalid am -q $patches 2>"$work/am.log"; then
	msg "git am: all $(ls "$out" | grep -vc '^0000') patches apply to v7.3.4"
else
	cat "$work/am.log" >&2
	rc=1
fi

for p in "$out"/0*.patch; do
	case $p in */0000-*) continue ;; esac
	r=$("$repo/scripts/checkpatch.pl" --strict --no-tree -q --no-signoff "$p" 2>&1)
	if echo "$r" | grep -q '^ERROR'; then
		echo "checkpatch: $(basename "$p"):" >&2
		echo "$r" | grep -A3 '^ERROR' >&2
		rc=1
	elif [ -n "$r" ]; then
		echo "checkpatch: $(basename "$p"): $(echo "$r" | grep -c '^WARNING') warnings," \
			"$(echo "$r" | grep -c '^CHECK') checks" >&2
	fi
done

# Build every prefix with the normal configuration. The worktree the prefixes
# are built in is kept across runs and only switched from commit to commit, so
# git rewrites just the files that differ and Kbuild rebuilds what they reach.
# A prefix whose tree and configuration built before is not built again: its
# result cannot differ (the tree hash covers every file).
if [ "${1:-}" = --build-each ]; then
	bw=$work/am
	if ! git -C "$bw" rev-parse -q --verify HEAD >/dev/null 2>&1; then
		rm -rf "$bw"
		git -C "$repo" worktree prune
		git -C "$repo" worktree add -q --detach "$bw" v7.3.4-debian
	fi
	cp "$BUILD/normal/.config" "$work/config.want"
	confhash=$(sha256sum <"$work/config.want" | cut -c1-16)
	verified=$work/verified-prefixes
	touch "$verified"
	n=0
	for c in $(git -C "$am" rev-list --reverse v7.3.4-debian..HEAD); do
		n=$((n + 1))
		subject=$(git -C "$am" log -1 --format=%s "$c")
		key="$(git -C "$am" rev-parse "$c^{tree}") $confhash"
		if grep -qx "$key" "$verified"; then
			msg "prefix $n builds (same tree and configuration built before): $subject"
			continue
		fi
		git -C "$bw" checkout -q -f "$c"
		cp "$work/config.want" "$work/config"
		if make -C "$bw" O="$work/build" LLVM="$LLVM_SUFFIX" -j"$JOBS" -s \
			KCONFIG_CONFIG="$work/config" olddefconfig vmlinux modules \
			>"$work/build-$n.log" 2>&1; then
			echo "$key" >>"$verified"
			msg "prefix $n builds: $subject"
		else
			echo "prefix $n does not build: $subject (log: $work/build-$n.log)" >&2
			rc=1
		fi
	done
fi
exit $rc
