#!/usr/bin/env bash
# bench/pull/run.sh — how fast, how lean and how resumable `layertool pull` is, against skopeo and docker pull.
#
# Two images of 8 layers of random bytes (gzip cannot shrink them): about 300 MB and 100 MB, pushed to a local
# docker-registry (distribution 2.8) on 127.0.0.1 and served behind bench/pull/slowproxy.py, which adds 50 ms to
# every request and caps each connection at 20 MB/s. Through the proxy, one after the other:
#   A  layertool pull REF -o DIR/ --jobs 1          (OCI layout; a fresh blob cache each time)
#   B  layertool pull REF -o DIR/                   (the default: 6 jobs)
#   C  skopeo copy docker://REF oci:DIR             (Debian's skopeo, installed when missing)
#   D  docker pull REF                              (the engine of DOCKER_HOST; 127.0.0.1 registries are insecure-allowed)
#   M  B's peak memory on the 300 MB and the 100 MB image (max RSS, /usr/bin/time)
#   R  a pull killed (SIGKILL) part-way, then run again: the proxy's count of blob bytes served to the second run
#      must be exactly the blob bytes minus what the first run left on disk (finished blobs and partial files).
# The figures are printed and appended to bench/pull/RESULTS.md with the date.
#
# Usage: bench/pull/run.sh
# Environment: LAYERTOOL (the layertool binary; default: artifacts/layertool/layertool from scripts/publish.sh,
#              else this checkout's JIT build, built when missing), DOCKER_HOST (default: the private engine of
#              scripts/engine.sh), SIZE_MB (default 300), SMALL_MB (default 100), KILL_AFTER (seconds, default 2).
# Disk: about 8x SIZE_MB under a temp directory, removed at the end (the pulled docker image too).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/layertool/docker.sock}
SIZE_MB=${SIZE_MB:-300}
SMALL_MB=${SMALL_MB:-100}
KILL_AFTER=${KILL_AFTER:-2}

if [ -n "${LAYERTOOL:-}" ]; then LT=$LAYERTOOL
elif [ -x artifacts/layertool/layertool ]; then LT=$ROOT/artifacts/layertool/layertool
else
  LT=$ROOT/src/LayerTool.Cli/bin/Release/net10.0/layertool
  [ -x "$LT" ] || dotnet build src/LayerTool.Cli -c Release >/dev/null
fi
if [ -f "$(dirname "$LT")/layertool.dll" ]; then BUILD="JIT (dotnet build)"; else BUILD="Native AOT"; fi
echo "layertool: $LT ($BUILD)" >&2

REGISTRY=$(scripts/registry.sh install)
if ! command -v skopeo >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "bench/pull: skopeo is missing and installing it needs root (apt-get install skopeo)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends skopeo >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends skopeo >/dev/null; }
fi
[ -x /usr/bin/time ] || { echo "bench/pull: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/layertool-bench-pull.XXXXXX)
PIDS=()
REFS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for r in "${REFS[@]}"; do docker image rm -f "$r" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(port); PP=$(port)
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$WORK" "$RP" > "$WORK/config.yml"
"$REGISTRY" serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
LOG=$WORK/proxy.log
: > "$LOG"
python3 bench/pull/slowproxy.py "$PP" "$RP" 0.05 20000000 "$LOG" &
PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$RP/v2/" >/dev/null && curl -sf "http://127.0.0.1:$PP/v2/" >/dev/null && break; sleep 0.2; done

# make_image NAME MB: a docker-archive of 8 layers, each 4 files of random bytes (MB/32 MB each), pushed straight to
# the registry (not through the proxy) as bench/NAME:1.
make_image() {
  local name=$1 mb=$2 dir=$WORK/img-$1
  mkdir -p "$dir"
  python3 - "$dir" "$mb" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, mb = sys.argv[1], int(sys.argv[2]); layers = []
per_file = mb * 1000 * 1000 // 32
for i in range(8):
    path = f"{out}/l{i}.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for f in range(4):
            data = os.urandom(per_file); info = tarfile.TarInfo(f"layer{i}/f{f}"); info.size = len(data); info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""): h.update(block)
    layers.append((path, h.hexdigest()))
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for _, d in layers]},
                     "history": [{"created_by": f"layer {i}"} for i in range(8)]}).encode()
cid = hashlib.sha256(config).hexdigest()
with tarfile.open(f"{out}/image.tar", "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    add(f"{cid}.json", config)
    for path, d in layers: t.add(path, arcname=f"{d}/layer.tar")
    add("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": [], "Layers": [f"{d}/layer.tar" for _, d in layers]}]).encode())
for path, _ in layers: os.remove(path)
PY
  "$LT" push "$dir/image.tar" "127.0.0.1:$RP/bench/$name:1" --cache-dir "$WORK/push-cache" --progress none >/dev/null
  rm -rf "$dir" "$WORK/push-cache"
}
make_image big "$SIZE_MB"
make_image small "$SMALL_MB"
BIG=127.0.0.1:$PP/bench/big:1
SMALL=127.0.0.1:$PP/bench/small:1

# Blob bytes of an image as the registry stores them (config and layers).
blob_bytes() {
  curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:$RP/v2/bench/$1/manifests/1" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))'
}
BIG_BYTES=$(blob_bytes big)
SMALL_BYTES=$(blob_bytes small)

# timed CMD...: runs CMD; T_SEC = wall seconds, T_RSS = max RSS in KB.
timed() {
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || { echo "bench/pull: failed: $*" >&2; cat "$WORK/err" >&2; exit 1; }
  read -r T_SEC T_RSS < "$WORK/time"
}
# served_since LINE: blob bytes the proxy sent after log line LINE.
served_since() { tail -n +"$(( $1 + 1 ))" "$LOG" | awk '$2 ~ /\/blobs\// && $1 == "GET" { s += $4 } END { print s + 0 }'; }
lines() { wc -l < "$LOG"; }

timed "$LT" pull "$BIG" -o "$WORK/o1/" --jobs 1 --cache-dir "$WORK/c1" --progress none; j1=$T_SEC; rm -rf "$WORK/o1" "$WORK/c1"
timed "$LT" pull "$BIG" -o "$WORK/o6/" --cache-dir "$WORK/c6" --progress none; j6=$T_SEC; rss_big=$T_RSS; rm -rf "$WORK/o6" "$WORK/c6"
timed "$LT" pull "$SMALL" -o "$WORK/os/" --cache-dir "$WORK/cs" --progress none; rss_small=$T_RSS; rm -rf "$WORK/os" "$WORK/cs"
timed skopeo copy --quiet --src-tls-verify=false "docker://$BIG" "oci:$WORK/sk:1"; sk=$T_SEC; sk_rss=$T_RSS; rm -rf "$WORK/sk"
REFS+=("$BIG")
docker image rm -f "$BIG" >/dev/null 2>&1 || true
timed docker pull -q "$BIG"; dp=$T_SEC
docker image rm -f "$BIG" >/dev/null 2>&1 || true

# The resume: a pull killed after KILL_AFTER seconds, then the same pull again into the same cache.
mark=$(lines)
"$LT" pull "$BIG" -o "$WORK/r/" --cache-dir "$WORK/cr" --progress none >/dev/null 2>&1 &
victim=$!
sleep "$KILL_AFTER"
kill -9 "$victim" 2>/dev/null || true
wait "$victim" 2>/dev/null || true
sleep 1
first=$(served_since "$mark")
on_disk=$(find "$WORK/cr/blobs" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
partials=$(find "$WORK/cr/blobs" -type f -name '*.partial' | wc -l)
rm -rf "$WORK/r"
mark=$(lines)
timed "$LT" pull "$BIG" -o "$WORK/r/" --cache-dir "$WORK/cr" --progress none; resumed=$T_SEC
second=$(served_since "$mark")
ranges=$(tail -n +"$(( mark + 1 ))" "$LOG" | awk '$1 == "GET" && $5 != "-"' | wc -l)
rm -rf "$WORK/r" "$WORK/cr"
expected=$(( BIG_BYTES - on_disk ))
lost=$(( first - on_disk ))
if [ "$second" -eq "$expected" ]; then once=yes; else once=no; fi

r() { python3 -c "print(f'{$1:.2f}')"; }
mb() { python3 -c "print(f'{$1/1e6:.1f}')"; }
verdict() { python3 -c "print('met' if $1 else 'NOT met')"; }
{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M') UTC — 8 layers, $(mb "$BIG_BYTES") MB of blobs; 50 ms a request, 20 MB/s a connection; layertool $BUILD"
  echo
  echo "| client | seconds | max RSS |"
  echo "|---|---|---|"
  echo "| \`layertool pull -o DIR/ --jobs 1\` | $j1 | |"
  echo "| \`layertool pull -o DIR/\` (6 jobs) | $j6 | $((rss_big / 1024)) MB |"
  echo "| \`skopeo copy docker:// oci:\` ($(skopeo --version | awk '{print $3}')) | $sk | $((sk_rss / 1024)) MB |"
  echo "| \`docker pull\` (engine $(docker version -f '{{.Server.Version}}'); download and extract) | $dp | (in dockerd) |"
  echo
  echo "- default vs skopeo: $(r "$j6 / $sk")× — target < 1: $(verdict "$j6 < $sk")"
  echo "- default vs docker pull: $(r "$j6 / $dp")× — target < 0.5: $(verdict "$j6 < 0.5 * $dp")"
  echo "- --jobs 1 vs default: $(r "$j1 / $j6")×"
  echo "- memory: max RSS $((rss_small / 1024)) MB pulling $(mb "$SMALL_BYTES") MB, $((rss_big / 1024)) MB pulling $(mb "$BIG_BYTES") MB — flat: $(verdict "$rss_big < 1.25 * $rss_small")"
  echo "- resume: killed (SIGKILL) after ${KILL_AFTER} s with $(mb "$on_disk") MB on disk ($partials partial blobs); the proxy had sent $(mb "$first") MB ($(mb "$lost") MB in flight, lost with the process). The re-run took ${resumed} s, used $ranges Range requests and fetched $(mb "$second") MB = $second bytes; blobs minus what was on disk = $expected bytes — each finished byte fetched once: $once"
} | tee -a bench/pull/RESULTS.md
