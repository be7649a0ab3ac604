#!/usr/bin/env bash
# bench/plan/run.sh — `layertool plan run` of one 12-image plan on 3 engines with --jobs 1, 2 and 3.
#
# The plan (written to a temp directory):
#   base (L0) -> rt-a, rt-b (L1) -> svc-1..svc-8 (L2; svc-1 is a diamond: FROM rt-a, COPY --from=rt-b) -> edge (L3, FROM svc-1)
# Every image has one RUN that sleeps (the part of a real build that waits: downloads, tests) and hashes 4 MB of
# random data (the part that needs a core): base 4 s, runtimes 3 s, services 1.5 s, edge 2 s of sleep.
# The 3 engines: the local one (DOCKER_HOST) and two private dockerds started here on unix sockets (as
# scripts/engine.sh starts the main one: no bridge, no iptables), busybox copied in, stopped at the end.
# Each run is --no-cache (every image built, every RUN executed), --progress json; the per-image times of the
# --jobs 1 run give the critical path (the longest chain, summed): the floor no scheduler can beat.
# Prints the wall times, the critical path and the ratios, and writes bench/plan/measured.json for model.py.
#
# Usage: bench/plan/run.sh        (as root: it starts two dockerds)
# Environment: LAYERTOOL (command to run layertool; default: dotnet on this checkout's Release build),
#              DOCKER_HOST (default: the private engine of scripts/engine.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/layertool/docker.sock}
WORK=$(mktemp -d /tmp/layertool-bench-plan.XXXXXX)
ID=$$
PIDS=()
say() { printf '%s\n' "$*" >&2; }

if [ -z "${LAYERTOOL:-}" ]; then
  DLL=$ROOT/src/LayerTool.Cli/bin/Release/net10.0/layertool.dll
  [ -f "$DLL" ] || { say "building the CLI (Release)..."; dotnet build "$ROOT/src/LayerTool.Cli" -c Release -v q -nologo >/dev/null; }
  LAYERTOOL="dotnet $DLL"
fi

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done; done
  for n in 1 2; do rm -rf "/var/lib/layertool-bench-$ID-$n" "/run/layertool-bench-$ID-$n" "/run/layertool-bench-$ID-$n.sock"; done
  docker images --format '{{.Repository}}:{{.Tag}}' --filter "reference=bench-plan-$ID/*" | xargs -r docker rmi >/dev/null 2>&1 || true
  # The images earlier runs built (each run rebuilds everything, leaving the previous ones untagged).
  cat "$WORK"/run-*.json 2>/dev/null | grep -o '"id":"sha256:[0-9a-f]*"' | cut -d'"' -f4 | sort -u | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- two more engines ----------------------------------------------------------------------------
ENGINES=(--engine "$DOCKER_HOST")
for n in 1 2; do
  data=/var/lib/layertool-bench-$ID-$n; exec_root=/run/layertool-bench-$ID-$n; sock=/run/layertool-bench-$ID-$n.sock
  mkdir -p "$data" "$exec_root"
  dockerd --host "unix://$sock" --data-root "$data" --exec-root "$exec_root" --pidfile "$exec_root/dockerd.pid" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false >"$WORK/dockerd-$n.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 60); do DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 && break; sleep 1; done
  docker save busybox:latest | DOCKER_HOST=unix://$sock docker load -q >/dev/null
  ENGINES+=(--engine "unix://$sock")
done

# ---- the plan -------------------------------------------------------------------------------------
image() { # NAME SLEEP FROM [EXTRA-LINE]
  mkdir -p "$WORK/plan/$1"
  echo "$1" >"$WORK/plan/$1/$1.txt"
  {
    echo "FROM $3"
    [ -n "${4:-}" ] && echo "$4"
    echo "RUN sleep $2 && head -c 4000000 /dev/urandom | sha256sum > /$1.sum"
    echo "COPY $1.txt /"
  } >"$WORK/plan/$1/Dockerfile"
  printf '  %s:\n    context: %s\n    tags: [bench-plan-%s/%s:1]\n' "$1" "$1" "$ID" "$1" >>"$WORK/plan/plan.yaml"
}
mkdir -p "$WORK/plan"
echo "images:" >"$WORK/plan/plan.yaml"
image base 4 busybox
image rt-a 3 base
image rt-b 3 base
image svc-1 1.5 rt-a "COPY --from=rt-b /rt-b.txt /"
for i in 2 3 4 5 6 7 8; do image "svc-$i" 1.5 "$([ $((i % 2)) = 0 ] && echo rt-b || echo rt-a)"; done
image edge 2 svc-1

# ---- the runs -------------------------------------------------------------------------------------
declare -A WALL
for jobs in 1 2 3; do
  say "plan run --jobs $jobs (3 engines)..."
  start=$(date +%s.%N)
  $LAYERTOOL plan run "$WORK/plan/plan.yaml" --jobs "$jobs" "${ENGINES[@]}" --no-cache --network none --progress json >"$WORK/run-$jobs.json" 2>"$WORK/run-$jobs.err" \
    || { cat "$WORK/run-$jobs.err" >&2; exit 1; }
  end=$(date +%s.%N)
  WALL[$jobs]=$(echo "$end - $start" | bc)
done

python3 - "$WORK" "${WALL[1]}" "${WALL[2]}" "${WALL[3]}" "$ROOT/bench/plan/measured.json" <<'PY'
import json, sys
work, w1, w2, w3, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
def summary(jobs):
    lines = [l for l in open(f"{work}/run-{jobs}.json") if '"summary"' in l]
    return {i["image"]: i for i in json.loads(lines[-1])["images"]}
parents = {"base": [], "rt-a": ["base"], "rt-b": ["base"], "svc-1": ["rt-a", "rt-b"], "edge": ["svc-1"]}
for i in range(2, 9): parents[f"svc-{i}"] = ["rt-b" if i % 2 == 0 else "rt-a"]
runs = {j: summary(j) for j in (1, 2, 3)}
for j, s in runs.items():
    bad = [n for n, i in s.items() if i["state"] != "built"]
    if bad: sys.exit(f"--jobs {j}: not built: {bad}")
times = {n: runs[1][n]["seconds"] for n in parents}
memo = {}
def finish(n):
    if n not in memo: memo[n] = times[n] + max((finish(p) for p in parents[n]), default=0.0)
    return memo[n]
critical = max(finish(n) for n in parents)
path, n = [], max(parents, key=finish)
while True:
    path.append(n)
    if not parents[n]: break
    n = max(parents[n], key=finish)
serial = sum(times.values())
print(f"per-image build times (--jobs 1): " + ", ".join(f"{n} {t:.1f}s" for n, t in times.items()))
print(f"sum of image times: {serial:.1f}s; critical path {' <- '.join(path)}: {critical:.1f}s")
for j, w in ((1, w1), (2, w2), (3, w3)):
    mean = sum(i["seconds"] for i in runs[j].values()) / len(runs[j])
    print(f"--jobs {j}: wall {w:.1f}s = {w / critical:.2f}x the critical path; mean image time {mean:.1f}s")
json.dump({"times": times, "parents": parents, "critical": critical, "wall": {"1": w1, "2": w2, "3": w3},
           "times_jobs3": {n: runs[3][n]["seconds"] for n in parents}}, open(out, "w"), indent=1)
PY
