#!/usr/bin/env bash
# A real Docker engine for LayerTool's tests, examples and benchmarks.
#
#   scripts/engine.sh up [--debian]   ensure an engine answers and the offline base images exist;
#                                     prints `export DOCKER_HOST=...` for the engine in use
#   scripts/engine.sh env             print the DOCKER_HOST line of the engine that answers (no start)
#   scripts/engine.sh images [--debian]  (re)create missing base images on the engine that answers
#   scripts/engine.sh down            stop the private engine, only if this script started it
#   scripts/engine.sh status          say which engine answers
#
# Order of preference (an engine that is already there is always honoured):
#   1. $DOCKER_HOST, when set and answering;
#   2. the system engine at /var/run/docker.sock;
#   3. a private dockerd of ours: socket $LAYERTOOL_ENGINE_SOCK (default /run/layertool/docker.sock),
#      data under $LAYERTOOL_ENGINE_ROOT (default /var/lib/layertool/engine), started when none answers.
#
# The private engine is safe on a shared machine: no docker0 bridge, no iptables rules, no IP forwarding
# or masquerading, so no container ever gets or talks to a private-range address. Containers use
# `--network none` or `host`. It runs with --experimental so `docker build --squash` (the benchmark
# anchor) is available.
#
# Base images, made offline (Docker Hub is not needed), created only when missing:
#   busybox:latest     from Debian's busybox-static (about a second)
#   debian:bookworm    from debootstrap --variant=minbase (with --debian; ~1 min the first time, then
#                      reused from a cached rootfs tarball under $LAYERTOOL_CACHE)
set -euo pipefail

SOCK=${LAYERTOOL_ENGINE_SOCK:-/run/layertool/docker.sock}
ROOT=${LAYERTOOL_ENGINE_ROOT:-/var/lib/layertool/engine}
RUNDIR=$(dirname "$SOCK")
PIDFILE=$RUNDIR/dockerd.pid
MARKER=$RUNDIR/started-by-layertool
LOG=$ROOT.log
CACHE=${LAYERTOOL_CACHE:-/var/cache/layertool}
WAIT_SECONDS=${LAYERTOOL_ENGINE_WAIT:-60}

say() { printf 'engine: %s\n' "$*" >&2; }
die() { printf 'engine: error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "starting a private engine needs root (run as root or start dockerd yourself and set DOCKER_HOST)"; }

answers() { # $1 = DOCKER_HOST value
  command -v docker >/dev/null 2>&1 || return 1
  DOCKER_HOST=$1 timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Prints the DOCKER_HOST of the engine that answers, or fails.
current_host() {
  if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then echo "$DOCKER_HOST"; return 0; fi
  if [ -S /var/run/docker.sock ] && answers unix:///var/run/docker.sock; then echo unix:///var/run/docker.sock; return 0; fi
  if [ -S "$SOCK" ] && answers "unix://$SOCK"; then echo "unix://$SOCK"; return 0; fi
  return 1
}

apt_install() { # packages...
  need_root
  export DEBIAN_FRONTEND=noninteractive
  # Never let a package's maintainer script start a system dockerd (with its default bridge on a
  # private-range subnet): deny service starts for the duration of the install.
  local policy=/usr/sbin/policy-rc.d own_policy="" rc=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; own_policy=1; fi
  if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  fi
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
  [ "$rc" = 0 ] || die "could not install $* from Debian's packages"
}

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian packages)"
    apt_install "${missing[@]}"
  fi
}

start_private() {
  need_root
  ensure_packages
  mkdir -p "$RUNDIR" "$ROOT"
  if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then rm -f "$PIDFILE"; fi
  say "starting a private dockerd on unix://$SOCK (data $ROOT, log $LOG)"
  # setsid: the daemon outlives this script and the test run that called it.
  setsid dockerd \
    --host "unix://$SOCK" \
    --data-root "$ROOT" \
    --exec-root "$RUNDIR/exec" \
    --pidfile "$PIDFILE" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --experimental \
    >"$LOG" 2>&1 </dev/null &
  echo $! >"$MARKER"
  local waited=0
  until answers "unix://$SOCK"; do
    if ! kill -0 "$(cat "$MARKER")" 2>/dev/null; then
      tail -n 30 "$LOG" >&2 || true
      rm -f "$MARKER"
      die "dockerd exited while starting (log above, full log in $LOG)"
    fi
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
      tail -n 30 "$LOG" >&2 || true
      die "dockerd did not answer within ${WAIT_SECONDS}s (log above, full log in $LOG)"
    fi
    sleep 1; waited=$((waited + 1))
  done
  say "private dockerd answers after ${waited}s"
}

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

make_busybox() {
  has_image busybox:latest && return 0
  ensure_packages
  local dir; dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin" "$dir/etc" "$dir/tmp" "$dir/root" "$dir/var" "$dir/home"
  chmod 1777 "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n' >"$dir/etc/group"
  tar --numeric-owner -C "$dir" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["sh"]' -m 'layertool offline busybox base' - busybox:latest >/dev/null
  rm -rf "$dir"
  say "created busybox:latest"
}

make_debian() {
  has_image debian:bookworm && return 0
  local tarball=$CACHE/debian-bookworm-minbase.tar
  if [ ! -s "$tarball" ]; then
    need_root
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    mkdir -p "$CACHE"
    local dir; dir=$(mktemp -d)
    say "debootstrap bookworm (minbase) into $dir; this takes about a minute once"
    local mirror
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    debootstrap --variant=minbase bookworm "$dir" "${mirror:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$dir"; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' -m 'layertool offline debian base' "$tarball" debian:bookworm >/dev/null
  say "created debian:bookworm"
}

make_images() { # [--debian]
  make_busybox
  if [ "${1:-}" = --debian ]; then make_debian; fi
}

cmd=${1:-up}; shift || true
case "$cmd" in
  up)
    if host=$(current_host); then :; else start_private; host="unix://$SOCK"; fi
    export DOCKER_HOST=$host
    make_images "${1:-}"
    echo "export DOCKER_HOST=$host"
    ;;
  env)
    host=$(current_host) || die "no engine answers (run: scripts/engine.sh up)"
    echo "export DOCKER_HOST=$host"
    ;;
  images)
    host=$(current_host) || die "no engine answers (run: scripts/engine.sh up)"
    export DOCKER_HOST=$host
    make_images "${1:-}"
    ;;
  status)
    if host=$(current_host); then say "engine answers at $host ($(DOCKER_HOST=$host docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}'))"; else say "no engine answers"; exit 1; fi
    ;;
  down)
    if [ -f "$MARKER" ]; then
      pid=$(cat "$MARKER")
      if kill -0 "$pid" 2>/dev/null; then
        say "stopping the private dockerd (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      fi
      rm -f "$MARKER"
    else
      say "nothing to stop: this script did not start the engine that answers"
    fi
    ;;
  *) die "usage: scripts/engine.sh up [--debian] | env | images [--debian] | status | down" ;;
esac
