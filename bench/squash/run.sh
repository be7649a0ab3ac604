#!/usr/bin/env bash
# bench/squash/run.sh — how fast and how lean `layertool squash` is, against the engine's own squash.
#
# Builds a ~450 MB churn workload (about a dozen layers: big files written and rewritten, thousands of
# small files, deletions of base content, hard links) on debian:bookworm, and prints the median wall
# time of
#   A  layertool squash IMAGE --onto debian:bookworm       (warm base index; the cold first run apart)
#   B  docker build --squash (same Dockerfile, every step cached, so only the daemon's squash)
#   C  docker save IMAGE | docker load
# as ratios A/B and A/C, with layertool's peak memory (/usr/bin/time -v, max RSS). Then the same churn
# on a base 4x bigger, to show that time follows the changed bytes, not the base's size.
#
# Usage: bench/squash/run.sh [RUNS]      (default 3; needs scripts/engine.sh up --debian, which starts
#        the engine with --experimental)
# Environment: LAYERTOOL (command to run layertool; default: scripts/publish.sh's build of this checkout),
#              DOCKER_HOST (default: the private engine of scripts/engine.sh).
# Everything it creates carries the label layertool.bench=1 and is removed at the end.
set -euo pipefail

RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/layertool/docker.sock}
WORK=$(mktemp -d /tmp/layertool-bench.XXXXXX)
CACHE=$WORK/cache
LABEL=layertool.bench=1

cleanup() {
  docker image rm -f bench/churn:1 bench/churn-squashed:1 bench/churn-lt:1 bench/bigbase:1 \
    bench/bigchurn:1 bench/bigchurn-lt:1 bench/bigchurn-squashed:1 >/dev/null 2>&1 || true
  docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

if [ -z "${LAYERTOOL:-}" ]; then
  say "publishing layertool (scripts/publish.sh: Native AOT, ReadyToRun without clang)..."
  LAYERTOOL=$("$ROOT/scripts/publish.sh")
fi
docker image inspect debian:bookworm >/dev/null 2>&1 || { say "debian:bookworm missing: run scripts/engine.sh up --debian"; exit 1; }
[ "$(docker info --format '{{.ExperimentalBuild}}')" = true ] || { say "the engine must run with --experimental"; exit 1; }

# The churn: ~330 MB written (~450 MB image) across 12 layers, much of it replaced or deleted later.
churn_dockerfile() { # BASE
  cat <<DOCKERFILE
FROM $1
LABEL $LABEL
RUN mkdir -p /data && head -c 80000000 /dev/urandom > /data/big1 && head -c 30000000 /dev/urandom > /data/keep
RUN head -c 80000000 /dev/urandom > /data/big1
RUN mkdir -p /data/small && cd /data/small && for i in \$(seq 1 4000); do echo "file \$i" > f\$i; done
RUN rm -rf /usr/share/doc /usr/share/man /usr/share/locale /usr/share/info
RUN ln /data/keep /data/keep.link1 && ln /data/keep /data/keep.link2
RUN head -c 40000000 /dev/urandom > /data/tmp && cp /data/tmp /data/tmp2
RUN rm -f /data/tmp && for i in \$(seq 1 2000); do rm -f /data/small/f\$i; done
RUN head -c 20000000 /dev/urandom > /data/big2 && ln /data/big2 /data/big2.link
RUN chmod 0600 /data/keep && chown 1000:1000 /data/tmp2
RUN for i in \$(seq 1 1000); do echo "changed \$i" > /data/small/f\$((i+2000)); done
RUN rm -f /data/big2 && touch /data/marker
RUN cp /usr/bin/apt /data/apt.copy && rm -rf /var/lib/apt/lists /var/cache/debconf
DOCKERFILE
}

build() { # DIR TAG [extra docker build args...]
  local dir=$1 tag=$2; shift 2
  docker build -q "$@" -t "$tag" "$dir" >/dev/null
}

seconds() { # command... → wall seconds on stdout (stdout of the command discarded)
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

layertool_squash() { # IMAGE BASE TAG  → prints "seconds maxrss_kb"
  local out=$WORK/time.txt
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$out" $LAYERTOOL squash "$1" --onto "$2" -t "$3" --cache-dir "$CACHE" >/dev/null 2>"$WORK/lt.err" \
    || { cat "$WORK/lt.err" >&2; return 1; }
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc -l) $(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")"
}

save_load() { docker save "$1" | docker load >/dev/null; }

bench_workload() { # NAME BASE IMAGE
  local name=$1 base=$2 image=$3
  local dir=$WORK/$name
  mkdir -p "$dir"
  churn_dockerfile "$base" >"$dir/Dockerfile"
  say "[$name] building the workload on $base..."
  build "$dir" "$image"
  local size layers
  size=$(docker image inspect --format '{{.Size}}' "$image")
  layers=$(docker image inspect --format '{{len .RootFS.Layers}}' "$image")
  say "[$name] $image: $layers layers, $((size / 1000000)) MB"

  local lt=() rss=() sq=() sl=() cold
  # No earlier result may survive, tagged or dangling: an image still holding the squashed layer makes
  # docker load skip applying it, and every timed run would look twice as fast as it is.
  docker image rm -f "${image%:*}-lt:1" "${image%:*}-squashed:1" >/dev/null 2>&1 || true
  docker image prune -f --filter "label=$LABEL" >/dev/null
  rm -rf "$CACHE"
  read -r cold coldrss < <(layertool_squash "$image" "$base" "${image%:*}-lt:1")
  for _ in $(seq 1 "$RUNS"); do
    # The previous result goes first (untimed): otherwise the engine still has the new layer (same diffID
    # every run) and docker load skips applying it, which build --squash never does.
    docker image rm -f "${image%:*}-lt:1" >/dev/null 2>&1 || true
    read -r t r < <(layertool_squash "$image" "$base" "${image%:*}-lt:1")
    lt+=("$t"); rss+=("$r")
    # Same for the engine's squash: without its previous result it registers the layer afresh, where it would
    # otherwise register it, find the same layer, and delete it again. Each timed run then starts from the same
    # state: its own previous result just deleted (on a filesystem without a journal, ext4 then skips the freed
    # inodes for a while, which slows whoever creates many files next; both sides pay it alike).
    docker image rm -f "${image%:*}-squashed:1" >/dev/null 2>&1 || true
    sq+=("$(seconds build "$dir" "${image%:*}-squashed:1" --squash)")
    sl+=("$(seconds save_load "$image")")
  done
  local mlt msq msl maxrss
  mlt=$(printf '%s\n' "${lt[@]}" | median)
  msq=$(printf '%s\n' "${sq[@]}" | median)
  msl=$(printf '%s\n' "${sl[@]}" | median)
  maxrss=$(printf '%s\n' "${rss[@]}" "$coldrss" | sort -g | tail -1)
  local squashed_layers
  squashed_layers=$(docker image inspect --format '{{len .RootFS.Layers}}' "${image%:*}-lt:1")
  printf '%-10s %4d MB %2d→%-2d layers | layertool %6.2fs (cold %6.2fs) | build --squash %6.2fs | save+load %6.2fs | ratio vs --squash %5.2f, vs save+load %5.2f | peak RSS %4d MB\n' \
    "$name" "$((size / 1000000))" "$layers" "$squashed_layers" "$mlt" "$cold" "$msq" "$msl" \
    "$(echo "$mlt / $msq" | bc -l)" "$(echo "$mlt / $msl" | bc -l)" "$((maxrss / 1024))"
}

say "runs per measurement: $RUNS (medians)"
bench_workload churn debian:bookworm bench/churn:1

# A base 4x the size of debian:bookworm (~120 MB → ~480 MB): the same churn on top.
mkdir -p "$WORK/bigbase"
cat >"$WORK/bigbase/Dockerfile" <<DOCKERFILE
FROM debian:bookworm
LABEL $LABEL
RUN mkdir -p /opt/bulk && for i in \$(seq 1 360); do head -c 1000000 /dev/urandom > /opt/bulk/blob\$i; done && \
    for d in \$(seq 1 20); do mkdir -p /opt/tree/d\$d && for i in \$(seq 1 500); do echo "\$d \$i" > /opt/tree/d\$d/f\$i; done; done
DOCKERFILE
say "[bigbase] building a 4x base..."
build "$WORK/bigbase" bench/bigbase:1
bench_workload bigchurn bench/bigbase:1 bench/bigchurn:1
