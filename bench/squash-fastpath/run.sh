#!/usr/bin/env bash
# bench/squash-fastpath/run.sh — layertool squash through the overlay2 fast path vs the engine-API path,
# against `docker build --squash` and `docker save | docker load`, measured in the same run (medians).
# Usage: bench/squash-fastpath/run.sh [RUNS] [MB]   (defaults 3 and 120: MB of churn written on debian:bookworm)
# Everything it creates carries layertool.bench=1 and is removed at the end.
set -euo pipefail
RUNS=${1:-3}; MB=${2:-120}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/layertool/docker.sock}
WORK=$(mktemp -d /tmp/layertool-fpbench.XXXXXX)
trap 'docker image rm -f bench/fp:1 bench/fp-sq:1 bench/fp-lt:1 >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
LT=${LAYERTOOL:-"dotnet $ROOT/src/LayerTool.Cli/bin/Release/net10.0/layertool.dll"}
[ -n "${LAYERTOOL:-}" ] || dotnet build -c Release -v q -nologo "$ROOT/src/LayerTool.Cli" >/dev/null
cat > "$WORK/Dockerfile" <<DOCKERFILE
FROM debian:bookworm
LABEL layertool.bench=1
RUN mkdir -p /data && head -c $((MB/2))000000 /dev/urandom > /data/big1 && head -c $((MB/4))000000 /dev/urandom > /data/keep
RUN head -c $((MB/2))000000 /dev/urandom > /data/big1
RUN mkdir -p /data/small && cd /data/small && for i in \$(seq 1 3000); do echo "file \$i" > f\$i; done
RUN rm -rf /usr/share/doc /usr/share/man && ln /data/keep /data/keep.link
RUN for i in \$(seq 1 1000); do rm -f /data/small/f\$i; done && chmod 600 /data/keep
DOCKERFILE
docker build -q -t bench/fp:1 "$WORK" >/dev/null
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
$LT squash bench/fp:1 --onto debian:bookworm --cache-dir "$WORK/cache" -t bench/fp-lt:1 >/dev/null 2>&1   # warm the base index
for i in $(seq "$RUNS"); do
  t $LT squash bench/fp:1 --onto debian:bookworm --cache-dir "$WORK/cache" -t bench/fp-lt:1 >> "$WORK/fast"
  t $LT squash bench/fp:1 --onto debian:bookworm --cache-dir "$WORK/cache" -t bench/fp-lt:1 --no-fast-path >> "$WORK/api"
  t docker build -q --squash -t bench/fp-sq:1 "$WORK" >> "$WORK/squash"
  t sh -c "docker save bench/fp:1 | docker load" >> "$WORK/saveload"
done
F=$(median < "$WORK/fast"); A=$(median < "$WORK/api"); S=$(median < "$WORK/squash"); L=$(median < "$WORK/saveload")
RF=$(rss $LT squash bench/fp:1 --onto debian:bookworm --cache-dir "$WORK/cache" -t bench/fp-lt:1 || echo "?")
RA=$(rss $LT squash bench/fp:1 --onto debian:bookworm --cache-dir "$WORK/cache" -t bench/fp-lt:1 --no-fast-path || echo "?")
echo "image: $(docker image inspect -f '{{.Size}}' bench/fp:1) bytes, runs: $RUNS (medians, seconds)"
echo "fast path       $F   peak RSS ${RF} KB"
echo "API path        $A   peak RSS ${RA} KB"
echo "build --squash  $S"
echo "save | load     $L"
echo "fast/squash $(echo "scale=2; $F/$S" | bc)  fast/saveload $(echo "scale=2; $F/$L" | bc)  api/squash $(echo "scale=2; $A/$S" | bc)"
