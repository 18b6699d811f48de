#!/usr/bin/env bash
# make bench: side-by-side timings of ECI against the plain alternative, in one run.
#   docker run --rm of busybox `true` through eci-runc and through plain runc, same dockerd.
# Prints medians and the ratio. Timings are reported, never asserted.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
runs=${ECI_BENCH_RUNS:-21}
work=$(mktemp -d /tmp/eci-bench-XXXXXX)
dockerd_pid=""

cleanup() {
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    DOCKER_HOST=unix://$work/docker.sock docker rm -f $(DOCKER_HOST=unix://$work/docker.sock docker ps -aq) >/dev/null 2>&1 || true
    kill "$dockerd_pid"; for _ in $(seq 80); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$dockerd_pid" 2>/dev/null || true
  fi
  pkill -9 -f "$work/exec" 2>/dev/null || true
  grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "make bench needs root (it starts dockerd)" >&2; exit 1; }
chmod 711 "$work"
mkdir -p "$work"/{data,exec,rootfs/bin,state}
echo '{}' > "$work/daemon.json"
printf 'eci:1048576:%d\n' $((256 * 65536)) | tee "$work/subuid" > "$work/subgid"
export ECI_STATE_DIR=$work/state ECI_SUBUID_FILE=$work/subuid ECI_SUBGID_FILE=$work/subgid
dockerd --config-file "$work/daemon.json" --iptables=false --bridge=none --data-root "$work/data" --exec-root "$work/exec" \
  --pidfile "$work/dockerd.pid" -H "unix://$work/docker.sock" --add-runtime "eci=$repo/bin/eci-runc" --default-runtime eci \
  >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST=unix://$work/docker.sock
for _ in $(seq 120); do docker version >/dev/null 2>&1 && break; sleep 0.25; done
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -c . | docker import - eci-bench:latest >/dev/null

# Warm both paths, then interleave so drift affects both equally.
for r in eci runc; do docker run --rm --network none --runtime "$r" eci-bench true; done
: > "$work/eci.ms"; : > "$work/runc.ms"
for _ in $(seq "$runs"); do
  for r in eci runc; do
    s=$(date +%s%N); docker run --rm --network none --runtime "$r" eci-bench true; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 )) >> "$work/$r.ms"
  done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
eci=$(median "$work/eci.ms"); runc=$(median "$work/runc.ms")
printf '\n%-44s %10s %10s %8s\n' "benchmark ($runs runs each, median)" "eci" "plain" "ratio"
printf '%-44s %8sms %8sms %8s\n' "docker run --rm busybox true (vs runc)" "$eci" "$runc" "$(awk -v a="$eci" -v b="$runc" 'BEGIN {printf "%.2f", a/b}')"

# The image builder: a cold build (empty cache), a warm rebuild (cached root filesystem, as after
# changing only ECI's binaries), and the outputs' sizes. Set ECI_BENCH_IMAGE=0 to skip.
if [ "${ECI_BENCH_IMAGE:-1}" = 1 ]; then
  img=$work/image
  mkdir -p "$img"
  s=$(date +%s%N); "$repo/bin/ecibuild" image -o "$img/out" --cache-dir "$img/cache" --quiet >/dev/null; e=$(date +%s%N)
  cold=$(( (e - s) / 1000000 ))
  s=$(date +%s%N); "$repo/bin/ecibuild" image -o "$img/out" --cache-dir "$img/cache" --quiet >/dev/null; e=$(date +%s%N)
  warm=$(( (e - s) / 1000000 ))
  printf '\n%-44s %10s %10s %8s\n' "ecibuild image" "warm" "cold" "ratio"
  printf '%-44s %8sms %8sms %8s\n' "build time (warm: cached rootfs)" "$warm" "$cold" "$(awk -v a="$warm" -v b="$cold" 'BEGIN {printf "%.2f", a/b}')"
  for f in eci.raw eci.qcow2 eci-kernel eci-initrd.img; do
    printf '%-44s %10s\n' "size of $f (allocated / apparent)" "$(du -h "$img/out/$f" | cut -f1) / $(du -h --apparent-size "$img/out/$f" | cut -f1)"
  done
fi
