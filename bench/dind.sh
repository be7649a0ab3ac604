#!/usr/bin/env bash
# What `layertool build --dind` adds over a direct `layertool build`: the same Dockerfile built both ways,
# no cache, N runs each (default 3), medians printed. Needs the dind image (layertool dind build-image).
#
#   bench/dind.sh [BASE_IMAGE] [RUNS]      e.g. bench/dind.sh debian:bookworm 3
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-busybox:latest}
runs=${2:-3}
image=${DIND_IMAGE:-layertool-dind:latest}
eval "$(scripts/engine.sh env)"
export DOCKER_HOST

dotnet build src/LayerTool.Cli -c Release -nologo -v quiet >/dev/null
layertool() { dotnet src/LayerTool.Cli/bin/Release/net10.0/layertool.dll "$@"; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"; docker rmi -f bench-dind:direct bench-dind:dind bench-dind:mid >/dev/null 2>&1 || true' EXIT
printf 'FROM %s\nRUN echo one > /one\nTAG bench-dind:mid\nRUN echo two > /two\nENV A=1\nRUN ls / > /listing\n' "$base" >"$ctx/Dockerfile"

seconds() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>"$ctx/err" || { cat "$ctx/err" >&2; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

direct=() dind=()
for _ in $(seq "$runs"); do
  direct+=("$(seconds layertool build --no-cache --network host -t bench-dind:direct "$ctx")")
  dind+=("$(seconds layertool build --no-cache --dind --dind-image "$image" -t bench-dind:dind "$ctx")")
  grep '^dind: start' "$ctx/err" >&2
done
d=$(printf '%s\n' "${direct[@]}" | median)
n=$(printf '%s\n' "${dind[@]}" | median)
printf 'base %s, %d runs: direct %.1fs, --dind %.1fs, added %.1fs\n' "$base" "$runs" "$d" "$n" "$(echo "$n - $d" | bc)"
