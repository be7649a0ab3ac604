#!/usr/bin/env bash
# bench/build: about 40 steps (RUN, ENV, COPY) on busybox, built by `layertool build --builder classic` and by
# the classic `DOCKER_BUILDKIT=0 docker build`, and by `layertool build --builder buildkit` and the engine's
# own BuildKit through Debian's 20.10 client (`DOCKER_BUILDKIT=1 /usr/bin/docker build`), without cache and
# fully cached; then the BuildKit build with two TAGs and with a COMPRESS, against the plain build and a
# squash. Prints the times and the ratios (layertool / docker; below 1.0 means layertool is faster)
# from this one run. BUILDKIT_CLIENT overrides the BuildKit reference client (default /usr/bin/docker).
#
#   bench/build/run.sh [LAYERTOOL]     LAYERTOOL: the layertool executable (default: scripts/publish.sh's)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
eval "$("$repo/scripts/engine.sh" up)"
export DOCKER_HOST

lt=${1:-}
# Native AOT (scripts/publish.sh; ReadyToRun when no clang can be had): a CLI that starts once per build
# should not spend its time in the JIT.
[ -n "$lt" ] || lt=$("$repo/scripts/publish.sh")

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
# Median of N alternating runs of docker and layertool, so both see the same machine load.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cold_runs=${COLD_RUNS:-3}
warm_runs=${WARM_RUNS:-7}

bk_client=${BUILDKIT_CLIENT:-/usr/bin/docker}
images=(bench-build/docker bench-build/layertool bench-build/buildkit bench-build/layertool-buildkit)
docker rmi -f "${images[@]}" >/dev/null 2>&1 || true
d_cold_all=() l_cold_all=() d_warm_all=() l_warm_all=()
b_cold_all=() k_cold_all=() b_warm_all=() k_warm_all=()
for _ in $(seq 1 "$cold_runs"); do
  d_cold_all+=("$(time_of env DOCKER_BUILDKIT=0 docker build --no-cache --network none -t bench-build/docker "$ctx")")
  l_cold_all+=("$(time_of env XDG_CACHE_HOME="$cache" "$lt" build --builder classic --no-cache --network none -t bench-build/layertool "$ctx")")
  b_cold_all+=("$(time_of env DOCKER_BUILDKIT=1 "$bk_client" build --no-cache --progress plain --network none -t bench-build/buildkit "$ctx")")
  k_cold_all+=("$(time_of env XDG_CACHE_HOME="$cache" "$lt" build --builder buildkit --progress plain --no-cache --network none -t bench-build/layertool-buildkit "$ctx")")
done
# Fill the caches with one cached-mode build each, then time fully cached ones.
env DOCKER_BUILDKIT=0 docker build --network none -t bench-build/docker "$ctx" >/dev/null 2>&1
env XDG_CACHE_HOME="$cache" "$lt" build --builder classic --network none -t bench-build/layertool "$ctx" >/dev/null 2>&1
env DOCKER_BUILDKIT=1 "$bk_client" build --progress plain --network none -t bench-build/buildkit "$ctx" >/dev/null 2>&1
env XDG_CACHE_HOME="$cache" "$lt" build --builder buildkit --progress plain --network none -t bench-build/layertool-buildkit "$ctx" >/dev/null 2>&1
for _ in $(seq 1 "$warm_runs"); do
  d_warm_all+=("$(time_of env DOCKER_BUILDKIT=0 docker build --network none -t bench-build/docker "$ctx")")
  l_warm_all+=("$(time_of env XDG_CACHE_HOME="$cache" "$lt" build --builder classic --network none -t bench-build/layertool "$ctx")")
  b_warm_all+=("$(time_of env DOCKER_BUILDKIT=1 "$bk_client" build --progress plain --network none -t bench-build/buildkit "$ctx")")
  k_warm_all+=("$(time_of env XDG_CACHE_HOME="$cache" "$lt" build --builder buildkit --progress plain --network none -t bench-build/layertool-buildkit "$ctx")")
done
d_cold=$(printf '%s\n' "${d_cold_all[@]}" | median); l_cold=$(printf '%s\n' "${l_cold_all[@]}" | median)
d_warm=$(printf '%s\n' "${d_warm_all[@]}" | median); l_warm=$(printf '%s\n' "${l_warm_all[@]}" | median)
b_cold=$(printf '%s\n' "${b_cold_all[@]}" | median); k_cold=$(printf '%s\n' "${k_cold_all[@]}" | median)
b_warm=$(printf '%s\n' "${b_warm_all[@]}" | median); k_warm=$(printf '%s\n' "${k_warm_all[@]}" | median)

kind="Native AOT"; [ -e "$(dirname "$lt")/layertool.dll" ] && kind="JIT (ReadyToRun when published so)"
printf 'layertool: %s (%s)\n' "$lt" "$kind"
printf 'medians of %s no-cache and %s cached runs, alternating\n' "$cold_runs" "$warm_runs"
printf 'steps: %s (busybox; RUN, ENV, COPY)\n' "$steps"
printf 'classic: DOCKER_BUILDKIT=0 docker build vs layertool build --builder classic\n'
printf '%-10s %12s %12s %8s\n' case docker layertool ratio
printf '%-10s %11.2fs %11.2fs %8.2f\n' no-cache "$d_cold" "$l_cold" "$(echo "$l_cold / $d_cold" | bc -l)"
printf '%-10s %11.2fs %11.2fs %8.2f\n' cached "$d_warm" "$l_warm" "$(echo "$l_warm / $d_warm" | bc -l)"
printf 'buildkit: DOCKER_BUILDKIT=1 %s build vs layertool build --builder buildkit\n' "$bk_client"
printf '%-10s %12s %12s %8s %14s\n' case buildkit layertool ratio vs-classic
printf '%-10s %11.2fs %11.2fs %8.2f %14.2f\n' no-cache "$b_cold" "$k_cold" "$(echo "$k_cold / $b_cold" | bc -l)" "$(echo "$k_cold / $d_cold" | bc -l)"
printf '%-10s %11.2fs %11.2fs %8.2f %14.2f\n' cached "$b_warm" "$k_warm" "$(echo "$k_warm / $b_warm" | bc -l)" "$(echo "$k_warm / $d_warm" | bc -l)"

# TAG and COMPRESS under BuildKit: the same Dockerfile with two TAGs (after steps 14 and 28) and a final
# `COMPRESS busybox:latest`. A TAG costs a truncated build (BuildKit takes its steps from the cache of the
# same run); a COMPRESS costs a squash of the image built so far. Each is compared with what it replaces:
# TAG with nothing (the plain Dockerfile), COMPRESS with `layertool squash` of the plain build's image.
awk 'NR == 15 { print "TAG bench-build/tag-a:latest" } NR == 29 { print "TAG bench-build/tag-b:latest" } { print }' \
  "$ctx/Dockerfile" >"$ctx/Dockerfile.tags"
{ cat "$ctx/Dockerfile"; echo "COMPRESS busybox:latest"; } >"$ctx/Dockerfile.compress"
ext_runs=${EXT_RUNS:-5}
p_cold_all=() t_cold_all=() c_cold_all=() s_cold_all=() p_warm_all=() t_warm_all=() c_warm_all=()
kbuild() { env XDG_CACHE_HOME="$cache" "$lt" build --builder buildkit --progress plain --network none "$@" "$ctx"; }
for _ in $(seq 1 "$ext_runs"); do
  p_cold_all+=("$(time_of kbuild --no-cache -t bench-build/plain)")
  s_cold_all+=("$(time_of "$lt" squash bench-build/plain --onto busybox:latest -t bench-build/squashed)")
  t_cold_all+=("$(time_of kbuild --no-cache -f "$ctx/Dockerfile.tags" -t bench-build/tags)")
  c_cold_all+=("$(time_of kbuild --no-cache -f "$ctx/Dockerfile.compress" -t bench-build/compress)")
done
for _ in $(seq 1 "$warm_runs"); do
  p_warm_all+=("$(time_of kbuild -t bench-build/plain)")
  t_warm_all+=("$(time_of kbuild -f "$ctx/Dockerfile.tags" -t bench-build/tags)")
  c_warm_all+=("$(time_of kbuild -f "$ctx/Dockerfile.compress" -t bench-build/compress)")
done
p_cold=$(printf '%s\n' "${p_cold_all[@]}" | median); t_cold=$(printf '%s\n' "${t_cold_all[@]}" | median)
c_cold=$(printf '%s\n' "${c_cold_all[@]}" | median); s_cold=$(printf '%s\n' "${s_cold_all[@]}" | median)
p_warm=$(printf '%s\n' "${p_warm_all[@]}" | median); t_warm=$(printf '%s\n' "${t_warm_all[@]}" | median)
c_warm=$(printf '%s\n' "${c_warm_all[@]}" | median)
printf 'TAG and COMPRESS (layertool build --builder buildkit; medians of %s no-cache and %s cached runs)\n' "$ext_runs" "$warm_runs"
printf '%-10s %10s %12s %10s %14s %12s %10s\n' case plain '+2 TAGs' per-TAG '+COMPRESS' squash added/squash
printf '%-10s %9.2fs %11.2fs %9.2fs %13.2fs %11.2fs %10.2f\n' no-cache "$p_cold" "$t_cold" "$(echo "($t_cold - $p_cold) / 2" | bc -l)" \
  "$c_cold" "$s_cold" "$(echo "($c_cold - $p_cold) / $s_cold" | bc -l)"
printf '%-10s %9.2fs %11.2fs %9.2fs %13.2fs %12s %10s\n' cached "$p_warm" "$t_warm" "$(echo "($t_warm - $p_warm) / 2" | bc -l)" "$c_warm" - -
images+=(bench-build/plain bench-build/squashed bench-build/tags bench-build/compress bench-build/tag-a bench-build/tag-b)
docker rmi -f "${images[@]}" >/dev/null 2>&1 || true
