#!/usr/bin/env bash
# bench/build: about 40 steps (RUN, ENV, COPY) on busybox, built by `layertool build` and by the classic
# `DOCKER_BUILDKIT=0 docker build`, without cache and fully cached. Prints the times and the ratios
# (layertool / docker; below 1.0 means layertool is faster) from this one run.
#
#   bench/build/run.sh [LAYERTOOL]     LAYERTOOL: the layertool executable (default: built from src/ in Release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
eval "$("$repo/scripts/engine.sh" up)"
export DOCKER_HOST

lt=${1:-}
if [ -z "$lt" ]; then
  # ReadyToRun: a CLI that starts once per build should not spend its time in the JIT.
  out=$(mktemp -d)
  if dotnet publish -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -v q -nologo -o "$out" "$repo/src/LayerTool.Cli" >/dev/null 2>&1; then
    lt="$out/layertool"
  else
    dotnet build -c Release -v q -nologo "$repo/src/LayerTool.Cli" >/dev/null
    lt="$repo/src/LayerTool.Cli/bin/Release/net10.0/layertool"
  fi
fi

ctx=$(mktemp -d)
cache=$(mktemp -d)
trap 'rm -rf "$ctx" "$cache"' EXIT
mkdir -p "$ctx/files"
{
  echo "FROM busybox:latest"
  for i in $(seq 1 14); do
    echo "ENV STEP_$i=value-$i"
    echo "RUN echo $i > /step-$i && mkdir -p /data/$i"
    echo "COPY files/f$i.txt /data/$i/"
  done
} >"$ctx/Dockerfile"
for i in $(seq 1 14); do head -c $((i * 4096)) /dev/urandom | base64 >"$ctx/files/f$i.txt"; done
steps=$(grep -c . "$ctx/Dockerfile")

now() { date +%s.%N; }
time_of() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo "$t1 - $t0" | bc; }

docker rmi -f bench-build/docker bench-build/layertool >/dev/null 2>&1 || true
d_cold=$(time_of env DOCKER_BUILDKIT=0 docker build --no-cache --network none -t bench-build/docker "$ctx")
d_warm=$(time_of env DOCKER_BUILDKIT=0 docker build --network none -t bench-build/docker "$ctx")
l_cold=$(time_of env XDG_CACHE_HOME="$cache" "$lt" build --no-cache --network none -t bench-build/layertool "$ctx")
# Fill our cache with one cached-mode build, then time a fully cached one.
env XDG_CACHE_HOME="$cache" "$lt" build --network none -t bench-build/layertool "$ctx" >/dev/null 2>&1
l_warm=$(time_of env XDG_CACHE_HOME="$cache" "$lt" build --network none -t bench-build/layertool "$ctx")

printf 'steps: %s (busybox; RUN, ENV, COPY)\n' "$steps"
printf '%-10s %12s %12s %8s\n' case docker layertool ratio
printf '%-10s %11.2fs %11.2fs %8.2f\n' no-cache "$d_cold" "$l_cold" "$(echo "$l_cold / $d_cold" | bc -l)"
printf '%-10s %11.2fs %11.2fs %8.2f\n' cached "$d_warm" "$l_warm" "$(echo "$l_warm / $d_warm" | bc -l)"
docker rmi -f bench-build/docker bench-build/layertool >/dev/null 2>&1 || true
