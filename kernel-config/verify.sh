#!/usr/bin/env bash
# make kernel-config-verify: check the fragments against a real kernel tree (Debian's
# linux-source): merge them onto x86_64 defconfig with the kernel's merge_config.sh, run
# olddefconfig, and fail on any requested value that is not in the final .config (a renamed
# option, an unmet dependency, a typo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tarball=${LINUX_SOURCE:-$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -1)}
[ -n "$tarball" ] && [ -f "$tarball" ] || { echo "no kernel source: install Debian's linux-source (make deps)" >&2; exit 1; }
work=$(mktemp -d /tmp/eci-kconfig-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "verifying kernel-config/*.conf against $(basename "$tarball")"
# Only what Kconfig needs: every Kconfig file, the build scripts, the x86 defconfigs and Makefiles.
tar -C "$work" -xf "$tarball" --wildcards '*Kconfig*' '*/scripts/*' '*/Makefile' '*/arch/x86/configs/*' '*/arch/x86/Makefile*' \
  '*/arch/x86/include/asm/*.h' '*/include/linux/kconfig.h' '*/tools/*' 2>/dev/null || true
src=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -1)
cd "$src"
make -s ARCH=x86_64 defconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O . .config "$here"/*.conf >/dev/null
make -s ARCH=x86_64 olddefconfig >/dev/null
failed=0
for fragment in "$here"/*.conf; do
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) option=${line%%=*}; want=${line#*=} ;;
      "# CONFIG_"*" is not set") option=${line#\# }; option=${option%% *}; want=n ;;
      *) continue ;;
    esac
    got=$(grep -E "^$option=" .config | cut -d= -f2- || true)
    [ -z "$got" ] && grep -qx "# $option is not set" .config && got=n
    if [ "$got" != "$want" ]; then
      echo "not in final .config: $option (requested $want, got ${got:-absent}) from $(basename "$fragment")"
      failed=$((failed + 1))
    fi
  done < "$fragment"
done
total=$(cat "$here"/*.conf | grep -cE '^(CONFIG_|# CONFIG_.* is not set)')
if [ "$failed" -gt 0 ]; then echo "kernel-config verify: $failed of $total options not in the final .config"; exit 1; fi
echo "kernel-config verify: all $total options in the final .config of $(make -s kernelversion 2>/dev/null || basename "$tarball")"
