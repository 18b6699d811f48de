#!/usr/bin/env bash
# make bench: side-by-side timings of ECI against the plain alternative, in one run.
#   docker run --rm of busybox `true` through eci-runc and through plain runc, same dockerd.
#   ecibuild image: cold build, warm rebuild, output sizes.
#   Sizes: the product binaries in bin/, and the ECI image's qcow2 next to the same image without
#   ECI (Tests/Benchmarks/plain-image.yaml).
#   VM boot to engine ready: the ECI image against the plain image, same QEMU flags; and
#   `ecibuild run --detach` / `stop`.
#   ecid (the syscall supervisor): a trapped mount's latency under ECI against plain runc with
#   CAP_SYS_ADMIN, an untrapped system call under both, `docker run` with ecid against without
#   (and, with CAP_SYS_ADMIN, under eci-init, which locks the mounts, against without it),
#   and the memory of ecid and its processes (holder, helpers) with 1 and with 50 containers.
# Prints medians and the ratio. Timings and sizes are reported, never asserted.
# Environment: ECI_BENCH_RUN=0 (skip the docker run comparison), ECI_BENCH_ECID=0 (skip ecid's
# figures; with ECI_BENCH_RUN=0 too, no dockerd starts), ECI_BENCH_MOUNTS (mount/umount pairs per
# latency run, 200), ECI_BENCH_ECID_CONTAINERS (the "many" count for memory, 50), ECI_BENCH_RUNS
# (docker run pairs, 21), ECI_BENCH_IMAGE=0 (skip the image build timings), ECI_BENCH_SIZES=0
# (skip the sizes), ECI_BENCH_BOOT=0 (skip the boots), ECI_BENCH_BOOT_RUNS (boot pairs, 3),
# ECI_BENCH_ACCEL (tcg or kvm; tcg), ECI_BENCH_BOOT_TIMEOUT (seconds per boot, 600),
# ECI_BENCH_ECI_IMAGE / ECI_BENCH_PLAIN_IMAGE (an existing `ecibuild image` output directory to
# use for the sizes and boots instead of building one).
# Only the sizes: ECI_BENCH_RUN=0 ECI_BENCH_IMAGE=0 ECI_BENCH_BOOT=0 Tests/Benchmarks/bench.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
runs=${ECI_BENCH_RUNS:-21}
work=$(mktemp -d /tmp/eci-bench-XXXXXX)
dockerd_pid=""
ecid_pid=""
qemu_pid=""
vm_dir=""
# `ecibuild image` records its output as the default for `ecibuild run`: keep the bench's
# temporary images out of the user's record.
export XDG_STATE_HOME=$work/xdg-state

cleanup() {
  if [ -n "$qemu_pid" ]; then kill -9 "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
  if [ -n "$vm_dir" ] && [ -S "$vm_dir/admin.sock" ]; then
    ECI_VM_DIR=$vm_dir "$repo/bin/ecibuild" stop --timeout 30 >/dev/null 2>&1 || true
    [ -f "$vm_dir/qemu.pid" ] && kill -9 "$(cat "$vm_dir/qemu.pid")" 2>/dev/null || true
  fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    DOCKER_HOST=unix://$work/docker.sock docker rm -f $(DOCKER_HOST=unix://$work/docker.sock docker ps -aq) >/dev/null 2>&1 || true
    kill "$dockerd_pid"; for _ in $(seq 80); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$dockerd_pid" 2>/dev/null || true
  fi
  if [ -n "$ecid_pid" ]; then
    # The fd holder (ecid's child) exits once its containers are gone and ecid is: SIGTERM to
    # ecid, then the holder by its own PID if it still holds anything.
    holder_pids=$(pgrep -P "$ecid_pid" -f "fd-holder" || true)
    kill "$ecid_pid" 2>/dev/null || true; wait "$ecid_pid" 2>/dev/null || true
    for p in $holder_pids; do
      for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
      kill "$p" 2>/dev/null || true
    done
  fi
  pkill -9 -f "$work/exec" 2>/dev/null || true
  grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "make bench needs root (it starts dockerd and builds images)" >&2; exit 1; }
chmod 711 "$work"
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The images the sizes and the boots compare, built at most once per run (the image section's
# output is reused when it ran). Both specs share the root filesystem cache entry: the image
# section's (warm) if it ran, else the user's default cache.
eci_image=${ECI_BENCH_ECI_IMAGE:-}
plain_image=${ECI_BENCH_PLAIN_IMAGE:-}
cache=()
use_image_cache() { cache=(); if [ -d "$work/image/cache" ]; then cache=(--cache-dir "$work/image/cache"); fi; }
need_eci_image() {
  [ -n "$eci_image" ] && return 0
  if [ -f "$work/image/out/manifest.json" ]; then eci_image=$work/image/out; return 0; fi
  use_image_cache
  eci_image=$work/eci-image
  "$repo/bin/ecibuild" image -o "$eci_image" "${cache[@]}" --quiet >/dev/null
}
need_plain_image() {
  [ -n "$plain_image" ] && return 0
  use_image_cache
  plain_image=$work/plain-image
  "$repo/bin/ecibuild" image "$repo/Tests/Benchmarks/plain-image.yaml" -o "$plain_image" "${cache[@]}" --quiet >/dev/null
}

# One private dockerd for the docker run comparison and ecid's figures: eci-runc as the default
# runtime, plain runc next to it, and eci-runc with ecid required (eci-ecid) or off (eci-noecid).
# ECI_ECID is set by a wrapper per runtime rather than in dockerd's environment, so the two
# interleave on one daemon.
start_dockerd() {
  mkdir -p "$work"/{data,exec,rootfs/bin,state}
  echo '{}' > "$work/daemon.json"
  printf 'eci:1048576:%d\n' $((256 * 65536)) | tee "$work/subuid" > "$work/subgid"
  export ECI_STATE_DIR=$work/state ECI_SUBUID_FILE=$work/subuid ECI_SUBGID_FILE=$work/subgid
  for mode in required off; do
    name=$([ "$mode" = required ] && echo eci-ecid || echo eci-noecid)
    printf '#!/bin/sh\nECI_ECID=%s exec %s "$@"\n' "$mode" "$repo/bin/eci-runc" > "$work/$name"
    chmod 755 "$work/$name"
  done
  dockerd --config-file "$work/daemon.json" --iptables=false --bridge=none --data-root "$work/data" --exec-root "$work/exec" \
    --pidfile "$work/dockerd.pid" -H "unix://$work/docker.sock" --add-runtime "eci=$repo/bin/eci-runc" --default-runtime eci \
    --add-runtime "eci-ecid=$work/eci-ecid" --add-runtime "eci-noecid=$work/eci-noecid" \
    >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST=unix://$work/docker.sock
  for _ in $(seq 120); do docker version >/dev/null 2>&1 && break; sleep 0.25; done
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
  tar -C "$work/rootfs" -c . | docker import - eci-bench:latest >/dev/null
}
if [ "${ECI_BENCH_RUN:-1}" = 1 ] || [ "${ECI_BENCH_ECID:-1}" = 1 ]; then start_dockerd; fi

# docker run --rm through eci-runc against plain runc, same dockerd (ecid not running yet: eci-runc
# in its default mode, auto, supervises nothing). Set ECI_BENCH_RUN=0 to skip.
if [ "${ECI_BENCH_RUN:-1}" = 1 ]; then
  # Warm both paths, then interleave so drift affects both equally.
  for r in eci runc; do docker run --rm --network none --runtime "$r" eci-bench true; done
  : > "$work/eci.ms"; : > "$work/runc.ms"
  for _ in $(seq "$runs"); do
    for r in eci runc; do
      s=$(date +%s%N); docker run --rm --network none --runtime "$r" eci-bench true; e=$(date +%s%N)
      echo $(( (e - s) / 1000000 )) >> "$work/$r.ms"
    done
  done
  eci=$(median "$work/eci.ms"); runc=$(median "$work/runc.ms")
  printf '\n%-44s %10s %10s %8s\n' "benchmark ($runs runs each, median)" "eci" "plain" "ratio"
  printf '%-44s %8sms %8sms %8s\n' "docker run --rm busybox true (vs runc)" "$eci" "$runc" "$(awk -v a="$eci" -v b="$runc" 'BEGIN {printf "%.2f", a/b}')"
fi

# ecid, the syscall supervisor. ecid runs in the background on the bench's state directory; the
# same busybox image gets two static programs: the trapped-mount loop (Tests/Fixtures/
# mount-latency.c: `mount-latency DIR N` prints name=value lines) and an untrapped-syscall loop. Set ECI_BENCH_ECID=0 to skip.
#   1. mount calls under ECI (eci-runc + ecid, --privileged: CAP_SYS_ADMIN in the container's
#      user namespace, its mounts locked by eci-init: a new mount trapped, umount and bind
#      remounts untrapped) against plain runc with CAP_SYS_ADMIN (the kernel alone), and the
#      same calls where nothing is locked and every one is trapped (`docker exec --privileged`
#      into a container that started without CAP_SYS_ADMIN: ecid's traps alone);
#   2. an untrapped system call (getppid, and a 1-byte read of /dev/zero) under both: the cost of
#      the trap filter on everything else;
#   3. docker run --rm busybox true with ecid (ECI_ECID=required) against without (off);
#   4. ecid's memory (RSS and PSS of ecid and its children: the fd holder, helpers) with 1 and
#      with ECI_BENCH_ECID_CONTAINERS containers running.
if [ "${ECI_BENCH_ECID:-1}" = 1 ]; then
  ecid_runs=${ECI_BENCH_ECID_RUNS:-5}
  mounts=${ECI_BENCH_MOUNTS:-200}
  many=${ECI_BENCH_ECID_CONTAINERS:-50}
  tools=$work/tools
  mkdir -p "$tools/rootfs"
  latency_src=$repo/Tests/Fixtures/mount-latency.c
  cat > "$tools/syscall-loop.c" <<'EOF'
/* syscall-loop N: ns per untrapped call (getppid; a 1-byte read of /dev/zero), and us per
   open + read to EOF + close of /proc/uptime and /proc/meminfo (emulated under ECI: ecid's FUSE). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    char c;
    int fd = open("/dev/zero", O_RDONLY);
    for (long i = 0; i < n / 10; i++) syscall(SYS_getppid);
    double t0 = now();
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    double t1 = now();
    for (long i = 0; i < n; i++) if (read(fd, &c, 1) != 1) return 1;
    double t2 = now();
    printf("getppid_ns=%.1f\nread_ns=%.1f\n", (t1 - t0) / n, (t2 - t1) / n);
    const char *files[] = {"/proc/uptime", "/proc/meminfo"};
    const char *names[] = {"uptime_us", "meminfo_us"};
    static char buffer[65536];
    for (int f = 0; f < 2; f++) {
        int reads = 2000;
        double s = now();
        for (int i = 0; i < reads; i++) {
            int p = open(files[f], O_RDONLY);
            if (p < 0) return 1;
            while (read(p, buffer, sizeof buffer) > 0) {}
            close(p);
        }
        printf("%s=%.2f\n", names[f], (now() - s) / reads / 1000);
    }
    return 0;
}
EOF
  cc -O2 -static -o "$tools/rootfs/mount-latency" "$latency_src"
  cc -O2 -static -o "$tools/rootfs/syscall-loop" "$tools/syscall-loop.c"
  mkdir -p "$tools/rootfs/mnt"
  cp -a "$work/rootfs/." "$tools/rootfs/"
  tar -C "$tools/rootfs" -c . | docker import - eci-bench-tools:latest >/dev/null

  "$repo/bin/ecid" --state-dir "$work/state" >"$work/ecid.log" 2>&1 &
  ecid_pid=$!
  for _ in $(seq 100); do grep -q listening "$work/ecid.log" && break; sleep 0.1; done
  grep -q listening "$work/ecid.log" || { echo "bench: ecid did not start:" >&2; cat "$work/ecid.log" >&2; exit 1; }

  value() { sed -n "s/^$1=//p" "$2"; }
  # Alternate the runtimes; each run appends its name=value lines to $work/ecid/<runtime>.<program>.
  mkdir -p "$work/ecid"
  # Plain runc gets CAP_SYS_ADMIN with no seccomp filter and no LSM profile (the kernel alone;
  # --privileged needs every capability in the bounding set, which a host that is itself a
  # container may lack); eci-runc gets --privileged (CAP_SYS_ADMIN in the container's user
  # namespace, only ecid's trap filter).
  flags() { if [ "$1" = runc ]; then echo "--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined"; else echo "--privileged"; fi; }
  # Traps alone: started without CAP_SYS_ADMIN (not locked, every mount call trapped), measured
  # through docker exec --privileged.
  docker run -d --name eci-bench-traps --network none --runtime eci-ecid --security-opt seccomp=unconfined \
    --security-opt apparmor=unconfined eci-bench-tools sleep 100000 >/dev/null
  for i in $(seq "$ecid_runs"); do
    docker exec --privileged eci-bench-traps /mount-latency /mnt "$mounts" \
      >> "$work/ecid/traps.mount" 2>>"$work/ecid/errors" || { echo "bench: mount-latency under traps alone failed:" >&2; tail -n 4 "$work/ecid/errors" >&2; }
    for r in eci-ecid runc; do
      # shellcheck disable=SC2046
      docker run --rm $(flags "$r") --network none --runtime "$r" eci-bench-tools /mount-latency /mnt "$mounts" \
        >> "$work/ecid/$r.mount" 2>>"$work/ecid/errors" || { echo "bench: mount-latency under $r failed:" >&2; tail -n 4 "$work/ecid/errors" >&2; }
      # shellcheck disable=SC2046
      docker run --rm $(flags "$r") --network none --runtime "$r" eci-bench-tools /syscall-loop 5000000 \
        >> "$work/ecid/$r.syscall" 2>>"$work/ecid/errors" || { echo "bench: syscall-loop under $r failed:" >&2; tail -n 4 "$work/ecid/errors" >&2; }
    done
    # For reference: plain runc with Docker's default seccomp profile (a filter, no traps).
    docker run --rm --network none --runtime runc eci-bench-tools /syscall-loop 5000000 \
      >> "$work/ecid/runc-default.syscall" 2>>"$work/ecid/errors" || { echo "bench: syscall-loop under runc failed:" >&2; tail -n 4 "$work/ecid/errors" >&2; }
  done
  med() { value "$1" "$2" > "$2.$1"; [ -s "$2.$1" ] && median "$2.$1" || echo "-"; }
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a/b}'; }
  diff_us() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%+.1fus", a-b}'; }
  docker rm -f eci-bench-traps >/dev/null
  m_eci=$(med mount_us "$work/ecid/eci-ecid.mount"); m_runc=$(med mount_us "$work/ecid/runc.mount"); m_traps=$(med mount_us "$work/ecid/traps.mount")
  u_eci=$(med umount_us "$work/ecid/eci-ecid.mount"); u_runc=$(med umount_us "$work/ecid/runc.mount"); u_traps=$(med umount_us "$work/ecid/traps.mount")
  rm_eci=$(med remount_us "$work/ecid/eci-ecid.mount"); rm_runc=$(med remount_us "$work/ecid/runc.mount"); rm_traps=$(med remount_us "$work/ecid/traps.mount")
  g_eci=$(med getppid_ns "$work/ecid/eci-ecid.syscall"); g_runc=$(med getppid_ns "$work/ecid/runc.syscall")
  r_eci=$(med read_ns "$work/ecid/eci-ecid.syscall"); r_runc=$(med read_ns "$work/ecid/runc.syscall")
  up_eci=$(med uptime_us "$work/ecid/eci-ecid.syscall"); up_runc=$(med uptime_us "$work/ecid/runc.syscall")
  mi_eci=$(med meminfo_us "$work/ecid/eci-ecid.syscall"); mi_runc=$(med meminfo_us "$work/ecid/runc.syscall")
  printf '\n%-44s %10s %10s %8s\n' "ecid ($ecid_runs runs each, median)" "eci+ecid" "runc+SYSADM" "ratio"
  printf '%-44s %8sus %8sus %8s\n' "mount -t tmpfs (trapped), per call" "$m_eci" "$m_runc" "$(ratio "$m_eci" "$m_runc")"
  printf '%-44s %10s\n' "  added per trapped call" "$(diff_us "$m_eci" "$m_runc")"
  printf '%-44s %8sus %8sus %8s\n' "umount (untrapped under eci-init)" "$u_eci" "$u_runc" "$(ratio "$u_eci" "$u_runc")"
  printf '%-44s %8sus %8sus %8s\n' "bind remount ro/rw (untrapped under eci-init)" "$rm_eci" "$rm_runc" "$(ratio "$rm_eci" "$rm_runc")"
  printf '%-44s %8sus %8sus %8s\n' "traps alone (not locked): mount -t tmpfs" "$m_traps" "$m_runc" "$(ratio "$m_traps" "$m_runc")"
  printf '%-44s %8sus %8sus %8s\n' "traps alone: umount" "$u_traps" "$u_runc" "$(ratio "$u_traps" "$u_runc")"
  printf '%-44s %8sus %8sus %8s\n' "traps alone: bind remount ro/rw" "$rm_traps" "$rm_runc" "$(ratio "$rm_traps" "$rm_runc")"
  printf '%-44s %8sns %8sns %8s\n' "untrapped getppid, per call" "$g_eci" "$g_runc" "$(ratio "$g_eci" "$g_runc")"
  printf '%-44s %8sns %8sns %8s\n' "untrapped 1-byte read of /dev/zero" "$r_eci" "$r_runc" "$(ratio "$r_eci" "$r_runc")"
  printf '%-44s %8sus %8sus %8s\n' "read /proc/uptime (ecid's FUSE vs procfs)" "$up_eci" "$up_runc" "$(ratio "$up_eci" "$up_runc")"
  printf '%-44s %8sus %8sus %8s\n' "read /proc/meminfo (ecid's FUSE vs procfs)" "$mi_eci" "$mi_runc" "$(ratio "$mi_eci" "$mi_runc")"
  g_def=$(med getppid_ns "$work/ecid/runc-default.syscall")
  printf '%-44s %8sns %8sns %8s\n' "  getppid: eci+ecid vs runc, Docker's profile" "$g_eci" "$g_def" "$(ratio "$g_eci" "$g_def")"

  # docker run with ecid against without, interleaved after a warm-up of each.
  for r in eci-ecid eci-noecid; do docker run --rm --network none --runtime "$r" eci-bench true; done
  : > "$work/ecid/with.ms"; : > "$work/ecid/without.ms"
  for _ in $(seq "$runs"); do
    for r in eci-ecid eci-noecid; do
      s=$(date +%s%N); docker run --rm --network none --runtime "$r" eci-bench true; e=$(date +%s%N)
      echo $(( (e - s) / 1000000 )) >> "$work/ecid/$([ "$r" = eci-ecid ] && echo with || echo without).ms"
    done
  done
  with=$(median "$work/ecid/with.ms"); without=$(median "$work/ecid/without.ms")
  printf '\n%-44s %10s %10s %8s\n' "docker run ($runs runs each, median)" "ecid" "no ecid" "ratio"
  printf '%-44s %8sms %8sms %8s\n' "docker run --rm busybox true (eci-runc)" "$with" "$without" "$(ratio "$with" "$without")"

  # eci-init's cost: a container with CAP_SYS_ADMIN starts under it (its mounts locked); the same
  # without CAP_SYS_ADMIN does not (MountLockPolicy), everything else equal.
  locked_flags="--security-opt apparmor=unconfined"
  # shellcheck disable=SC2086
  for f in "--cap-add SYS_ADMIN" ""; do docker run --rm --network none --runtime eci-ecid $locked_flags $f eci-bench true; done
  : > "$work/ecid/locked.ms"; : > "$work/ecid/unlocked.ms"
  for _ in $(seq "$runs"); do
    for which in locked unlocked; do
      f=""; [ "$which" = locked ] && f="--cap-add SYS_ADMIN"
      # shellcheck disable=SC2086
      s=$(date +%s%N); docker run --rm --network none --runtime eci-ecid $locked_flags $f eci-bench true; e=$(date +%s%N)
      echo $(( (e - s) / 1000000 )) >> "$work/ecid/$which.ms"
    done
  done
  locked=$(median "$work/ecid/locked.ms"); unlocked=$(median "$work/ecid/unlocked.ms")
  printf '%-44s %8sms %8sms %8s\n' "  --cap-add SYS_ADMIN (eci-init) vs without" "$locked" "$unlocked" "$(ratio "$locked" "$unlocked")"

  # Memory: ecid and its children (the fd holder; helpers while they run), summed.
  ecid_memory() {
    local rss=0 pss=0 n=0 p r q
    for p in "$ecid_pid" $(pgrep -P "$ecid_pid" || true); do
      [ -r "/proc/$p/smaps_rollup" ] || continue
      r=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup"); q=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
      rss=$((rss + ${r:-0})); pss=$((pss + ${q:-0})); n=$((n + 1))
    done
    echo "$rss $pss $n"
  }
  records() { find "$work/state/ecid/containers" -name '*.json' 2>/dev/null | wc -l; }
  read -r rss0 pss0 procs0 <<< "$(ecid_memory)"
  docker run -d --privileged --network none --runtime eci-ecid eci-bench sleep 100000 >/dev/null
  sleep 1
  read -r rss1 pss1 procs1 <<< "$(ecid_memory)"; rec1=$(records)
  for _ in $(seq 2 "$many"); do docker run -d --privileged --network none --runtime eci-ecid eci-bench sleep 100000 >/dev/null; done
  sleep 2
  read -r rssn pssn procsn <<< "$(ecid_memory)"; recn=$(records)
  kib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k/1024}'; }
  printf '\n%-44s %10s %10s %8s\n' "ecid memory (ecid + children)" "RSS" "PSS" "procs"
  printf '%-44s %10s %10s %8s\n' "no container" "$(kib "$rss0")" "$(kib "$pss0")" "$procs0"
  printf '%-44s %10s %10s %8s\n' "1 container ($rec1 supervised)" "$(kib "$rss1")" "$(kib "$pss1")" "$procs1"
  printf '%-44s %10s %10s %8s\n' "$many containers ($recn supervised)" "$(kib "$rssn")" "$(kib "$pssn")" "$procsn"
  printf '%-44s %10s %10s\n' "  per extra container" \
    "$(awk -v a="$rssn" -v b="$rss1" -v n="$many" 'BEGIN {printf "%.0f KiB", (a-b)/(n-1)}')" \
    "$(awk -v a="$pssn" -v b="$pss1" -v n="$many" 'BEGIN {printf "%.0f KiB", (a-b)/(n-1)}')"
  # One of them mounting in a loop: its helper is live (idle helpers are retired after 30 s).
  docker run -d --privileged --network none --runtime eci-ecid --name eci-bench-mounting eci-bench-tools /mount-latency /mnt 100000000 >/dev/null
  sleep 2
  read -r rssm pssm procsm <<< "$(ecid_memory)"
  printf '%-44s %10s %10s %8s\n' "$many containers, one mounting (a helper live)" "$(kib "$rssm")" "$(kib "$pssm")" "$procsm"
  docker rm -f $(docker ps -aq) >/dev/null 2>&1 || true
fi

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

# Sizes: the product binaries as installed in bin/ (release: stripped, the Swift runtime linked
# in), and the disk image the VM boots (qcow2, what a user downloads) next to the same image
# without ECI, so the difference is what ECI adds. Set ECI_BENCH_SIZES=0 to skip.
if [ "${ECI_BENCH_SIZES:-1}" = 1 ]; then
  need_eci_image
  need_plain_image
  megabytes() { awk -v b="$(stat -c %s "$1")" 'BEGIN {printf "%.1f MB", b/1000000}'; }
  printf '\n%-44s %10s %10s %8s\n' "sizes (bytes / 10^6)" "eci" "plain" "ratio"
  for b in eci-runc eci-agent ecibuild; do
    printf '%-44s %10s %10s %8s\n' "bin/$b" "$(megabytes "$repo/bin/$b")" "-" "-"
  done
  printf '%-44s %10s %10s %8s\n' "image eci.qcow2 (plain: without ECI)" \
    "$(megabytes "$eci_image/eci.qcow2")" "$(megabytes "$plain_image/eci.qcow2")" \
    "$(awk -v a="$(stat -c %s "$eci_image/eci.qcow2")" -v b="$(stat -c %s "$plain_image/eci.qcow2")" 'BEGIN {printf "%.2f", a/b}')"
fi

# Boot to engine ready: the ECI image against the same image without ECI (no agent, no isolated
# runtime, the package's docker.service and docker.socket; Tests/Benchmarks/plain-image.yaml),
# each booted by QEMU with the same flags, timed from QEMU's start to the console line
# "ECI: engine ready" (printed by eci-boot-report.service in both images); QEMU is then killed
# (the disk is snapshot=on). Then `ecibuild run --detach` of the ECI image until it prints
# DOCKER_HOST (boot, agent, host tunnel), and `ecibuild stop`. Set ECI_BENCH_BOOT=0 to skip.
if [ "${ECI_BENCH_BOOT:-1}" = 1 ]; then
  boot=$work/boot
  boot_runs=${ECI_BENCH_BOOT_RUNS:-3}
  accel=${ECI_BENCH_ACCEL:-tcg}
  boot_timeout=${ECI_BENCH_BOOT_TIMEOUT:-600}
  cpu=max; [ "$accel" = kvm ] && cpu=host
  mkdir -p "$boot"
  need_eci_image
  need_plain_image

  # One boot: appends the milliseconds to QEMU's start to "ECI: engine ready" to $2.ms, or
  # reports a timeout. The console goes to $2.console.
  boot_once() {
    local image=$1 name=$2 log=$boot/$2.console cmdline s e now line
    cmdline=$(cat "$image/eci-cmdline")
    : > "$log"
    s=$(date +%s%N)
    qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m 2048 \
      -nodefaults -no-user-config -display none -no-reboot \
      -kernel "$image/eci-kernel" -initrd "$image/eci-initrd.img" -append "$cmdline" \
      -drive "file=$image/eci.qcow2,format=qcow2,if=virtio,snapshot=on" -serial "file:$log" \
      -netdev user,id=net0 -device virtio-net-pci,netdev=net0 -device virtio-rng-pci \
      </dev/null >"$boot/$name.qemu.log" 2>&1 &
    qemu_pid=$!
    while :; do
      if grep -q "ECI: engine ready" "$log"; then e=$(date +%s%N); break; fi
      now=$(date +%s%N)
      if ! kill -0 "$qemu_pid" 2>/dev/null || [ $(( (now - s) / 1000000000 )) -ge "$boot_timeout" ]; then e=""; break; fi
      sleep 0.1
    done
    kill -9 "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""
    if [ -z "$e" ]; then
      echo "bench: $name: no \"ECI: engine ready\" within ${boot_timeout}s (or QEMU exited); console tail:" >&2
      tail -n 5 "$log" | tr -d '\r' >&2
      return 0
    fi
    echo $(( (e - s) / 1000000 )) >> "$boot/$name.ms"
    line=$(grep -a -m1 "ECI: engine ready" "$log" | tr -d '\r')
    echo "$line" > "$boot/$name.ready"
  }
  : > "$boot/eci.ms"; : > "$boot/plain.ms"
  # Alternate which goes first, so drift and cache warmth affect both equally.
  for i in $(seq "$boot_runs"); do
    if [ $((i % 2)) = 1 ]; then boot_once "$eci_image" eci; boot_once "$plain_image" plain
    else boot_once "$plain_image" plain; boot_once "$eci_image" eci; fi
  done
  for name in eci plain; do
    expected=$([ "$name" = eci ] && echo eci || echo runc)
    if [ -f "$boot/$name.ready" ] && ! grep -q "default runtime $expected" "$boot/$name.ready"; then
      echo "bench: the $name image reports \"$(sed 's/.*ECI: //' "$boot/$name.ready")\", expected default runtime $expected" >&2
    fi
  done
  seconds() { [ -s "$1" ] && awk -v ms="$(median "$1")" 'BEGIN {printf "%.1fs", ms/1000}' || echo "timeout"; }
  eci_s=$(seconds "$boot/eci.ms"); plain_s=$(seconds "$boot/plain.ms")
  ratio=-; [ -s "$boot/eci.ms" ] && [ -s "$boot/plain.ms" ] && ratio=$(awk -v a="$(median "$boot/eci.ms")" -v b="$(median "$boot/plain.ms")" 'BEGIN {printf "%.2f", a/b}')
  printf '\n%-44s %10s %10s %8s\n' "VM boot ($boot_runs runs each, median, $accel)" "eci" "plain" "ratio"
  printf '%-44s %10s %10s %8s\n' "boot to engine ready (QEMU start to console)" "$eci_s" "$plain_s" "$ratio"

  # `ecibuild run --detach`: the supervisor, QEMU with the agent's ports, boot, and the host
  # tunnel; done when it prints DOCKER_HOST. Then one engine request through it, and stop.
  vm_dir=$boot/vm
  s=$(date +%s%N)
  if out=$(ECI_VM_DIR=$vm_dir "$repo/bin/ecibuild" run --detach --accel "$accel" "$eci_image" 2>"$boot/run.log"); then
    e=$(date +%s%N)
    run_s=$(awk -v ms=$(( (e - s) / 1000000 )) 'BEGIN {printf "%.1fs", ms/1000}')
    host=$(printf '%s\n' "$out" | sed -n 's/^DOCKER_HOST=//p')
    runtime=$(DOCKER_HOST=$host docker info --format '{{.DefaultRuntime}}' 2>&1) || runtime="no answer: $runtime"
    s=$(date +%s%N)
    if ECI_VM_DIR=$vm_dir "$repo/bin/ecibuild" stop >"$boot/stop.log" 2>&1; then
      e=$(date +%s%N); stop_s=$(awk -v ms=$(( (e - s) / 1000000 )) 'BEGIN {printf "%.1fs", ms/1000}')
    else
      stop_s=failed; cat "$boot/stop.log" >&2
    fi
  else
    run_s=failed; stop_s=-; runtime=-
    echo "bench: ecibuild run --detach failed:" >&2; tail -n 20 "$boot/run.log" >&2
  fi
  printf '%-44s %10s %10s %8s\n' "ecibuild run --detach to DOCKER_HOST" "$run_s" "-" "-"
  printf '%-44s %10s %10s %8s\n' "ecibuild stop" "$stop_s" "-" "-"
  printf '%-44s %10s\n' "engine default runtime via DOCKER_HOST" "$runtime"
  vm_dir=""
fi
