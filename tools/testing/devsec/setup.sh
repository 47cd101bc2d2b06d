#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what the workbench needs on a Debian 12 x86_64 host.  Idempotent:
# when everything is present this only runs a few cheap checks.

. "$(dirname "$0")/common.sh"

PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev make flex bison bc cpio
      libelf-dev libssl-dev kmod qemu-system-x86 busybox-static bash-static
      xz-utils python3 rsync perl dwarves python3-sphinx openssl)

need_help() {
	cat >&2 <<MSG

error: $1

coco-accept builds a Linux 7.3 kernel with Rust support and boots it in QEMU.
It needs a Debian 12 (bookworm) x86_64 host, root (to install Debian
packages with apt-get), and a rustup-managed Rust toolchain (rustc >= 1.85)
in \$PATH or in ~/.cargo/bin.  Install rustup from your distribution or
https://rustup.rs, then run the command again.
MSG
	exit 1
}

[ "$(uname -m)" = x86_64 ] || need_help "this host is $(uname -m), not x86_64."
if [ -r /etc/os-release ]; then
	. /etc/os-release
	[ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ] ||
		need_help "this host is ${PRETTY_NAME:-unknown}, not Debian 12."
else
	need_help "cannot identify the distribution (/etc/os-release missing)."
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || need_help "packages missing (${missing[*]}) and not running as root."
	msg "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null ||
		die "apt-get update failed; check the network and /etc/apt/sources.list"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

command -v rustup >/dev/null && command -v rustc >/dev/null ||
	need_help "rustup/rustc not found."

for c in rustfmt clippy; do
	command -v "${c/clippy/clippy-driver}" >/dev/null || {
		msg "adding $c to the Rust toolchain"
		rustup component add "$c" >/dev/null || die "rustup component add $c failed"
	}
done

sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
	msg "adding rust-src to the Rust toolchain"
	rustup component add rust-src >/dev/null ||
		die "rustup component add rust-src failed"
fi

if ! command -v bindgen >/dev/null ||
   [ "$(bindgen --version 2>/dev/null)" != "bindgen 0.72.1" ]; then
	msg "installing bindgen-cli 0.72.1 (cargo install, takes a few minutes)"
	cargo install --locked --quiet bindgen-cli --version 0.72.1 ||
		die "cargo install bindgen-cli failed"
fi

# Cheap toolchain sanity check; the kernel's own 'make rustavailable' runs
# against the prepared tree in build.sh once the source exists.
clang-19 --version >/dev/null && ld.lld-19 --version >/dev/null ||
	die "clang-19/ld.lld-19 not usable"
exit 0
