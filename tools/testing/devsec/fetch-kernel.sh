#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch the pinned Linux 7.3 source (Debian's linux-source-7.3 package) with a
# private apt configuration, verify it and extract a pristine tree into the
# cache.  The machine's own apt sources and state are never touched.
#
# The pristine tree is trusted only when its ".complete" stamp exists; the
# stamp is written after a full, verified extraction, so an interrupted or
# failed run (network, hash mismatch, disk full) leaves nothing a later run
# would use.

. "$(dirname "$0")/common.sh"

[ -f "$PRISTINE/.complete" ] && exit 0

deb_name="${KPKG}_${KPKG_VERSION}_all.deb"
deb="$DL/$deb_name"
tarball="$DL/$KPKG.tar.xz"
mkdir -p "$DL"

sha_ok() { echo "$2  $1" | sha256sum --quiet -c - >/dev/null 2>&1; }

if ! [ -f "$deb" ] || ! sha_ok "$deb" "$KPKG_DEB_SHA256"; then
	rm -f "$deb"
	apt_dir="$DL/apt"
	rm -rf "$apt_dir"
	mkdir -p "$apt_dir"/{state/lists/partial,cache/archives/partial,parts,prefs}
	: >"$apt_dir/state/status"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	echo "deb [signed-by=$keyring] http://deb.debian.org/debian $KPKG_SUITE main" \
		>"$apt_dir/sources.list"
	[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] ||
		die "$keyring is missing (apt-get install debian-archive-keyring)"
	aptopts=(-o Dir::Etc::SourceList="$apt_dir/sources.list"
		 -o Dir::Etc::SourceParts="$apt_dir/parts"
		 -o Dir::Etc::Preferences=/dev/null
		 -o Dir::Etc::PreferencesParts="$apt_dir/prefs"
		 -o Dir::State="$apt_dir/state"
		 -o Dir::State::status="$apt_dir/state/status"
		 -o Dir::Cache="$apt_dir/cache"
		 -o APT::Sandbox::User=root
		 -o Acquire::Languages=none
		 -o Debug::NoLocking=1)
	msg "downloading $KPKG $KPKG_VERSION ($KPKG_SUITE) through a private apt configuration"
	apt-get -q "${aptopts[@]}" update >"$apt_dir/update.log" 2>&1 ||
		die "apt-get update for $KPKG_SUITE failed (log: $apt_dir/update.log)"
	(cd "$DL" && apt-get -q "${aptopts[@]}" download "$KPKG=$KPKG_VERSION") \
		>"$apt_dir/download.log" 2>&1 ||
		die "downloading $KPKG=$KPKG_VERSION failed (log: $apt_dir/download.log)"
	[ -f "$deb" ] || die "apt-get download did not produce $deb_name"
	if ! sha_ok "$deb" "$KPKG_DEB_SHA256"; then
		got=$(sha256sum "$deb" | cut -d' ' -f1)
		mv "$deb" "$deb.bad"
		die "$deb_name: sha256 mismatch (expected $KPKG_DEB_SHA256, got $got);" \
			"kept as $deb.bad, nothing extracted"
	fi
fi

if ! [ -f "$tarball" ] || ! sha_ok "$tarball" "$KPKG_TAR_SHA256"; then
	rm -f "$tarball" "$tarball.part"
	msg "extracting the source tarball from $deb_name"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO "./usr/src/$KPKG.tar.xz" >"$tarball.part" ||
		die "cannot extract usr/src/$KPKG.tar.xz from $deb (disk full?)"
	if ! sha_ok "$tarball.part" "$KPKG_TAR_SHA256"; then
		rm -f "$tarball.part"
		die "$KPKG.tar.xz: sha256 mismatch (expected $KPKG_TAR_SHA256); nothing extracted"
	fi
	mv "$tarball.part" "$tarball"
fi

msg "unpacking pristine linux-$KVERSION into $PRISTINE"
parent=$(dirname "$PRISTINE")
tmp="$parent/.unpack.$$"
rm -rf "$parent"/.unpack.* "$PRISTINE"
mkdir -p "$tmp"
# The tarball has many xz blocks: decompress them on all CPUs.
tar -C "$tmp" -I 'xz -T0' -xf "$tarball" ||
	{ rm -rf "$tmp"; die "unpacking $tarball failed (disk full?); removed the partial tree"; }
top=$(ls "$tmp")
[ "$(echo "$top" | wc -l)" = 1 ] && [ -f "$tmp/$top/Makefile" ] ||
	{ rm -rf "$tmp"; die "unexpected tarball layout"; }
grep -q '^PATCHLEVEL = 3$' "$tmp/$top/Makefile" ||
	{ rm -rf "$tmp"; die "tarball is not a Linux 7.3 tree"; }
mv "$tmp/$top" "$PRISTINE"
rmdir "$tmp"
touch "$PRISTINE/.complete"
