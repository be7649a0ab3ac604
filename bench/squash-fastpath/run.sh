#!/usr/bin/env bash
# bench/squash-fastpath/run.sh — layertool squash through the overlay2 fast path vs the engine-API path,
# against `docker build --squash` and `docker save | docker load`, measured in the same run (medians),
# on two workloads: the churn on debian:bookworm, and the same churn on a base four times bigger (to show
# that the time follows the changed bytes, not the base's size). Peak RSS from /usr/bin/time -f %M.
# Usage: bench/squash-fastpath/run.sh [RUNS] [MB] [WORKLOADS]
#   RUNS default 3; MB default 120 (MB of churn written); WORKLOADS default "debian bigbase"; also
#   "manypaths" (a base with PATHS=400000 extra empty files: peak memory against the number of paths).
# Environment: LAYERTOOL (command; default: scripts/publish.sh's Native AOT build of this checkout), NO_API=1 skips the API path,
#   BEFORE (another layertool command, e.g. an older build) is timed in the same runs for a before/after ratio.
# Everything it creates carries layertool.bench=1 and is removed at the end.
set -euo pipefail
RUNS=${1:-3}; MB=${2:-120}; WORKLOADS=${3:-"debian bigbase"}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/layertool/docker.sock}
WORK=$(mktemp -d /tmp/layertool-fpbench.XXXXXX)
trap 'docker image rm -f bench/fp:1 bench/fp-sq:1 bench/fp-lt:1 bench/fp-big:1 bench/fpb:1 bench/fpb-sq:1 bench/fpb-lt:1 bench/fp-many:1 bench/fpm:1 bench/fpm-sq:1 bench/fpm-lt:1 >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
LT=${LAYERTOOL:-}
[ -n "$LT" ] || LT=$("$ROOT/scripts/publish.sh")   # Native AOT (ReadyToRun without clang): no JIT warm-up in the timings
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss() { rmi "$p-lt:1"; /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
rmi() { docker image rm -f "$1" >/dev/null 2>&1 || true; }

churn() { # BASE DIR
  mkdir -p "$2"
  cat > "$2/Dockerfile" <<DOCKERFILE
FROM $1
LABEL layertool.bench=1
RUN mkdir -p /data && head -c $((MB/2))000000 /dev/urandom > /data/big1 && head -c $((MB/4))000000 /dev/urandom > /data/keep
RUN head -c $((MB/2))000000 /dev/urandom > /data/big1
RUN mkdir -p /data/small && cd /data/small && for i in \$(seq 1 3000); do echo "file \$i" > f\$i; done
RUN rm -rf /usr/share/doc /usr/share/man && ln /data/keep /data/keep.link
RUN for i in \$(seq 1 1000); do rm -f /data/small/f\$i; done && chmod 600 /data/keep
DOCKERFILE
}

workload() { # NAME BASE IMAGE
  local name=$1 base=$2 image=$3 dir=$WORK/$1 p=${3%:*}
  churn "$base" "$dir"
  docker build -q -t "$image" "$dir" >/dev/null
  # No earlier result may survive, tagged or dangling: it would keep the squashed layer in the engine.
  rmi "$p-lt:1"; rmi "$p-sq:1"; docker image prune -f --filter label=layertool.bench=1 >/dev/null
  $LT squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" >/dev/null 2>&1   # warm the base index
  # Before each timed squash the previous result is removed (untimed): otherwise the engine still has the
  # new layer (same diffID every run), and docker load skips applying it, which build --squash never does.
  for i in $(seq "$RUNS"); do
    rmi "$p-lt:1"; t $LT squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" >> "$dir/fast"
    [ -z "${BEFORE:-}" ] || { rmi "$p-lt:1"; t $BEFORE squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" >> "$dir/before"; }
    [ -n "${NO_API:-}" ] || { rmi "$p-lt:1"; t $LT squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" --no-fast-path >> "$dir/api"; }
    rmi "$p-sq:1"; t docker build -q --squash -t "$p-sq:1" "$dir" >> "$dir/squash"
    t sh -c "docker save $image | docker load" >> "$dir/saveload"
  done
  local F A S L RF RA
  F=$(median < "$dir/fast"); S=$(median < "$dir/squash"); L=$(median < "$dir/saveload")
  RF=$(rss $LT squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" || echo "?")
  echo "[$name] image $(docker image inspect -f '{{.Size}}' "$image") bytes on $base ($(docker image inspect -f '{{.Size}}' "$base") bytes), runs: $RUNS (medians, seconds)"
  echo "[$name] fast path       $F   peak RSS ${RF} KB   (runs: $(tr '\n' ' ' < "$dir/fast"))"
  if [ -z "${NO_API:-}" ]; then
    A=$(median < "$dir/api")
    RA=$(rss $LT squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" --no-fast-path || echo "?")
    echo "[$name] API path        $A   peak RSS ${RA} KB"
  fi
  if [ -n "${BEFORE:-}" ]; then
    local B RB
    B=$(median < "$dir/before")
    RB=$(rss $BEFORE squash "$image" --onto "$base" --cache-dir "$WORK/cache" -t "$p-lt:1" || echo "?")
    echo "[$name] fast, BEFORE    $B   peak RSS ${RB} KB   (runs: $(tr '\n' ' ' < "$dir/before"))  before/squash $(echo "scale=2; $B/$S" | bc)"
  fi
  echo "[$name] build --squash  $S   (runs: $(tr '\n' ' ' < "$dir/squash"))"
  echo "[$name] save | load     $L"
  echo "[$name] fast/squash $(echo "scale=2; $F/$S" | bc)  fast/saveload $(echo "scale=2; $F/$L" | bc)${A:+  api/squash $(echo "scale=2; $A/$S" | bc)}"
}

for w in $WORKLOADS; do
  case $w in
    debian) workload debian debian:bookworm bench/fp:1 ;;
    bigbase)
      # A base four times debian:bookworm's size (~117 MB → ~480 MB): 360 MB of blobs, 10,000 small files.
      mkdir -p "$WORK/bigbase-base"
      cat > "$WORK/bigbase-base/Dockerfile" <<DOCKERFILE
FROM debian:bookworm
LABEL layertool.bench=1
RUN mkdir -p /opt/bulk && for i in \$(seq 1 360); do head -c 1000000 /dev/urandom > /opt/bulk/blob\$i; done && \
    for d in \$(seq 1 20); do mkdir -p /opt/tree/d\$d && for i in \$(seq 1 500); do echo "\$d \$i" > /opt/tree/d\$d/f\$i; done; done
DOCKERFILE
      docker build -q -t bench/fp-big:1 "$WORK/bigbase-base" >/dev/null
      workload bigbase bench/fp-big:1 bench/fpb:1 ;;
    manypaths)
      # Memory against the number of paths: debian plus PATHS (default 400,000) empty files in directories of
      # 500, the same churn on top (the squash holds the base index and the final index in memory).
      n=${PATHS:-400000}
      mkdir -p "$WORK/many-base"
      cat > "$WORK/many-base/Dockerfile" <<DOCKERFILE
FROM debian:bookworm
LABEL layertool.bench=1
RUN for d in \$(seq 1 $((n / 500))); do mkdir -p /opt/many/d\$d && cd /opt/many/d\$d && seq -f f%g 1 500 | xargs touch; done
DOCKERFILE
      docker build -q -t bench/fp-many:1 "$WORK/many-base" >/dev/null
      workload manypaths bench/fp-many:1 bench/fpm:1 ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
done
