#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# apply.sh KSRC: apply the overlay (patches/series + new files) to a user's
# own Linux 7.3 tree.  Refuses a tree that is not 7.3, and, for a git tree,
# one with local changes in any file the overlay touches.  Patches are
# tried with --dry-run first, so a refusal leaves the tree untouched.

. "$(dirname "$0")/common.sh"

ksrc=${1:-}
[ -n "$ksrc" ] && [ -f "$ksrc/Makefile" ] || die "usage: make apply KSRC=/path/to/linux-7.3"
ksrc=$(cd "$ksrc" && pwd)
grep -q '^VERSION = 7$' "$ksrc/Makefile" && grep -q '^PATCHLEVEL = 3$' "$ksrc/Makefile" ||
	die "$ksrc is not a Linux 7.3 tree (see its Makefile); the overlay is for 7.3"

# The tools-testing-devsec-* patches hook the overlay's own test tooling into
# the build; they are not part of the feature (nor of 'make series').
mapfile -t series < <(sed 's/#.*//; /^\s*$/d; /^tools-testing-devsec-/d' \
	"$OVERLAY/patches/series")
touched=()
for p in "${series[@]}"; do
	while read -r f; do
		touched+=("$f")
	done < <(sed -n 's|^+++ b/\([^\t]*\).*|\1|p' "$OVERLAY/patches/$p")
done
kdirs=(arch drivers include rust samples Documentation tools lib kernel scripts)
mapfile -t files < <(cd "$OVERLAY" && git ls-files "${kdirs[@]}" 2>/dev/null |
	grep -v '^tools/testing/devsec/'
	printf 'tools/testing/devsec/%s\n' devsec.sh lib.sh)

if git -C "$ksrc" rev-parse --git-dir >/dev/null 2>&1; then
	dirty=$(git -C "$ksrc" status --porcelain -- "${touched[@]}" "${files[@]}" 2>/dev/null)
	[ -z "$dirty" ] || die "local changes in files the overlay touches:
$dirty"
fi
for f in "${files[@]}"; do
	[ -e "$ksrc/$f" ] && ! cmp -s "$OVERLAY/$f" "$ksrc/$f" &&
		die "$f already exists in $ksrc with other content (overlay applied already?)"
done
for p in "${series[@]}"; do
	if ! patch -p1 -d "$ksrc" --dry-run -s -f -F0 <"$OVERLAY/patches/$p" >/dev/null; then
		patch -p1 -R -d "$ksrc" --dry-run -s -f -F0 <"$OVERLAY/patches/$p" \
			>/dev/null 2>&1 &&
			die "patches/$p is already applied to $ksrc"
		die "patches/$p does not apply to $ksrc"
	fi
	# Later patches may depend on earlier ones: apply as we go.
	patch -p1 -d "$ksrc" -s -f -F0 --no-backup-if-mismatch <"$OVERLAY/patches/$p" ||
		die "patches/$p failed half-way; restore the tree with git checkout"
done
for f in "${files[@]}"; do
	install -D -m "$(stat -c %a "$OVERLAY/$f")" "$OVERLAY/$f" "$ksrc/$f"
done
msg "applied ${#series[@]} patches and ${#files[@]} files to $ksrc"
