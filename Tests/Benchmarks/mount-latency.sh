#!/usr/bin/env bash
# A trapped mount's latency under ECI (eci-runc + ecid) against the same calls under plain runc
# with CAP_SYS_ADMIN, side by side (Tests/Fixtures/mount-latency.c in a busybox container).
# Reports, never asserts. As root:
#   Tests/Benchmarks/mount-latency.sh [BIN_DIR]     (BIN_DIR: where eci-runc and ecid are; ./bin)
# Environment: ECI_MOUNT_LATENCY_N (iterations, 2000), ECI_MOUNT_LATENCY_RUNS (containers per
# side, 3; the median is printed).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:-$repo/bin}" && pwd)
n=${ECI_MOUNT_LATENCY_N:-2000}
runs=${ECI_MOUNT_LATENCY_RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "mount-latency.sh needs root" >&2; exit 1; }
for tool in "$bin/eci-runc" "$bin/ecid" /usr/sbin/runc /bin/busybox; do
  [ -x "$tool" ] || { echo "missing $tool" >&2; exit 1; }
done
work=$(mktemp -d /tmp/eci-mount-latency-XXXXXX)
chmod 711 "$work"
ecid_pid=""
cleanup() {
  for c in $(ls "$work/runc-root" 2>/dev/null); do /usr/sbin/runc --root "$work/runc-root" delete -f "$c" >/dev/null 2>&1 || true; done
  if [ -n "$ecid_pid" ]; then kill "$ecid_pid" 2>/dev/null || true; wait "$ecid_pid" 2>/dev/null || true; fi
  grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cc -O2 -static -o "$work/mount-latency" "$repo/Tests/Fixtures/mount-latency.c"
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,tmp,mnt}
cp /bin/busybox "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
cp "$work/mount-latency" "$rootfs/bin/mount-latency"
/usr/sbin/runc spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" "$n" <<'PY'
import json, sys
path, n = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/mount-latency", "/mnt", n]
caps = c["process"]["capabilities"]
for k in ("bounding", "effective", "permitted"):
    caps[k] = sorted(set(caps.get(k, [])) | {"CAP_SYS_ADMIN"})
c["root"]["readonly"] = False
json.dump(c, open(path, "w"))
PY

printf 'eci:1048576:%d\n' $((16 * 65536)) > "$work/subuid"
cp "$work/subuid" "$work/subgid"
export ECI_STATE_DIR=$work/state ECI_SUBUID_FILE=$work/subuid ECI_SUBGID_FILE=$work/subgid ECI_RUNC=/usr/sbin/runc
"$bin/ecid" --state-dir "$work/state" 2>"$work/ecid.log" &
ecid_pid=$!
for _ in $(seq 100); do [ -S "$work/state/ecid/ecid.sock" ] && break; sleep 0.05; done
[ -S "$work/state/ecid/ecid.sock" ] || { echo "ecid did not start: $(cat "$work/ecid.log")" >&2; exit 1; }

for i in $(seq "$runs"); do
  /usr/sbin/runc --root "$work/runc-root" run --bundle "$work/bundle" "plain-$i" >>"$work/runc.out"
  ECI_ECID=required "$bin/eci-runc" --root "$work/runc-root" run --bundle "$work/bundle" "eci-$i" >>"$work/eci.out"
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-16s %12s %12s %12s\n' "per call" "runc" "eci" "added"
for key in mount_umount_us remount_us getppid_ns; do
  r=$(grep "^$key=" "$work/runc.out" | cut -d= -f2 | median)
  e=$(grep "^$key=" "$work/eci.out" | cut -d= -f2 | median)
  printf '%-16s %12s %12s %12s\n' "$key" "$r" "$e" "$(awk -v a="$e" -v b="$r" 'BEGIN {printf "%.2f", a - b}')"
done
echo "(median of $runs containers x $n iterations; mount_umount and remount in microseconds, getppid in nanoseconds)"
