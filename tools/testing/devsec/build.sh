#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh FLAVOUR: configure and build one kernel flavour in the cache.
#
#   normal  configs/base.config                     bzImage + modules
#   debug   configs/base.config + debug.config      bzImage + modules
#   kcsan   configs/base.config + kcsan.config      bzImage + modules
#   nocc    configs/base.config + nocc.config       bzImage + modules (stub behaviour)
#   norust  configs/base.config + norust.config     vmlinux (build check)
#
# The configuration is regenerated only when a fragment changed, and every
# symbol a fragment asks for is checked after olddefconfig: a typo or an
# unmet dependency fails the build instead of silently dropping a feature.

. "$(dirname "$0")/common.sh"

flavour=${1:?usage: build.sh normal|debug|kcsan|nocc|norust}
case $flavour in
normal) frags=(base) ;;
debug) frags=(base debug) ;;
kcsan) frags=(base kcsan) ;;
nocc) frags=(base nocc) ;;
norust) frags=(base norust) ;;
*) die "unknown flavour '$flavour'" ;;
esac
out=$BUILD/$flavour

# A build variant starts as a copy of the nearest build (same source tree, so
# the object files stay valid): Kbuild then recompiles only what the
# configuration change reaches.  CONFIDENTIAL_DEVICES=n changes device.h for
# nearly every file; RUST=n (which implies it) then changes little more.
seed=
case $flavour in
nocc) seed=normal ;;
norust) seed=nocc; [ -f "$BUILD/nocc/vmlinux" ] || seed=normal ;;
esac
if [ -n "$seed" ] && [ ! -f "$out/.config" ] && [ -f "$BUILD/$seed/vmlinux" ]; then
	msg "[$flavour] starting from a copy of the $seed build"
	rm -rf "$out" "$out.tmp"
	cp -a "$BUILD/$seed" "$out.tmp" && rm -f "$out.tmp/.coco-config" &&
		rm -rf "$out.tmp/modroot" "$out.tmp/initramfs.d" && mv "$out.tmp" "$out" ||
		die "[$flavour] could not copy $BUILD/$seed"
fi
mkdir -p "$out"

paths=()
for f in "${frags[@]}"; do paths+=("$OVERLAY/configs/$f.config"); done
want=$(cat "${paths[@]}" "$KSRC/Makefile" | sha256sum | cut -d' ' -f1)

if [ ! -f "$out/.config" ] || [ "$(cat "$out/.coco-config" 2>/dev/null)" != "$want" ]; then
	msg "[$flavour] configuring: tinyconfig + ${frags[*]}"
	rm -f "$out/.coco-config"
	kmake "$flavour" tinyconfig >/dev/null
	KCONFIG_CONFIG="$out/.config" "$KSRC/scripts/kconfig/merge_config.sh" \
		-m -O "$out" "$out/.config" "${paths[@]}" >"$out/merge.log" 2>&1 ||
		die "merge_config.sh failed (log: $out/merge.log)"
	kmake "$flavour" olddefconfig >/dev/null
	# Every symbol a fragment sets must have survived olddefconfig; a later
	# fragment overrides an earlier one (tac + first occurrence wins).
	dropped=()
	declare -A seen=()
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*} ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *} ;;
		*) continue ;;
		esac
		[ -n "${seen[$sym]:-}" ] && continue
		seen[$sym]=1
		case $line in
		CONFIG_*=*)
			sym=${line%%=*} val=${line#*=}
			if [ "$val" = n ]; then
				grep -q "^$sym=" "$out/.config" && dropped+=("$line")
			else
				grep -qx "$sym=$val" "$out/.config" || dropped+=("$line")
			fi ;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }
			sym=${sym%% *}
			grep -q "^$sym=" "$out/.config" && dropped+=("$line") ;;
		esac
	done < <(cat "${paths[@]}" | tac)
	if [ ${#dropped[@]} -gt 0 ]; then
		printf '  %s\n' "${dropped[@]}" >&2
		die "[$flavour] the symbols above did not survive olddefconfig" \
			"(typo or unmet dependency)"
	fi
	echo "$want" >"$out/.coco-config"
fi

if grep -q '^CONFIG_RUST=y' "$out/.config"; then
	kmake "$flavour" rustavailable >/dev/null 2>"$out/rustavailable.log" ||
		{
			cat "$out/rustavailable.log" >&2
			die "the kernel's 'make rustavailable' check failed"
		}
fi

# The normal flavour compiles Rust through clippy (make CLIPPY=1), so lint
# findings land in its build log next to compiler warnings.
extra=()
[ "$flavour" = normal ] && extra=(CLIPPY=1)

# Build with the full log in the cache; show warnings, and the tail on failure.
kbuild() {
	if ! kmake "$flavour" "${extra[@]}" "$@" >"$out/build.log" 2>&1; then
		grep -E 'error|Error' "$out/build.log" | head -40 >&2
		tail -n 20 "$out/build.log" >&2
		die "[$flavour] kernel build failed (log: $out/build.log)"
	fi
	grep -E 'warning:' "$out/build.log" >&2 || true
}

msg "[$flavour] building"
case $flavour in
normal | debug | kcsan | nocc)
	kbuild bzImage modules
	rm -rf "$out/modroot.new"
	kmake "$flavour" "${extra[@]}" INSTALL_MOD_PATH="$out/modroot.new" modules_install \
		>/dev/null ||
		die "[$flavour] modules_install failed"
	rm -rf "$out/modroot"
	mv "$out/modroot.new" "$out/modroot"
	;;
*)
	kbuild vmlinux
	;;
esac
