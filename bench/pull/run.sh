#!/usr/bin/env bash
# bench/pull: one image of 8 layers (about 300 MB of incompressible data) in a local docker-registry, behind a
# proxy that adds 50 ms per request and caps each connection at 20 MB/s. Compares layertool pull -o DIR with
# --jobs 1 and the default (6), skopeo copy to an OCI layout, and docker pull (the engine of DOCKER_HOST).
# Results are appended to RESULTS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DOCKER_HOST:=unix:///run/layertool/docker.sock}"; export DOCKER_HOST
LT=${LT:-src/LayerTool.Cli/bin/Release/net10.0/layertool}
[ -x "$LT" ] || dotnet build src/LayerTool.Cli -c Release >/dev/null
REGISTRY=$(scripts/registry.sh install)
command -v skopeo >/dev/null || apt-get install -y --no-install-recommends skopeo >/dev/null
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(port); PP=$(port)
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$work" "$RP" > "$work/config.yml"
"$REGISTRY" serve "$work/config.yml" >/dev/null 2>&1 &
python3 bench/pull/slowproxy.py "$PP" "$RP" 0.05 20000000 &
sleep 1

# The image: 8 layers of 36 MB of random bytes each (gzip cannot shrink them), made as a docker-archive.
mkdir -p "$work/img"
python3 - "$work/img" <<'PY'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]; layers = []
for i in range(8):
    path = f"{out}/l{i}.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for f in range(4):
            data = os.urandom(9 * 1024 * 1024); info = tarfile.TarInfo(f"layer{i}/f{f}"); info.size = len(data); info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    layers.append((path, hashlib.sha256(open(path, "rb").read()).hexdigest()))
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for _, d in layers]},
                     "history": [{"created_by": f"layer {i}"} for i in range(8)]}).encode()
cid = hashlib.sha256(config).hexdigest()
with tarfile.open(f"{out}/image.tar", "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    add(f"{cid}.json", config)
    for path, d in layers: t.add(path, arcname=f"{d}/layer.tar")
    add("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["bench/pull:1"], "Layers": [f"{d}/layer.tar" for _, d in layers]}]).encode())
PY
"$LT" push "$work/img/image.tar" "127.0.0.1:$RP/bench/pull:1" --cache-dir "$work/push-cache" --progress none >/dev/null
size=$(du -sb "$work/data" | cut -f1)
ref="127.0.0.1:$PP/bench/pull:1"

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
j1=$(t "$LT" pull "$ref" -o "$work/o1/" --jobs 1 --cache-dir "$work/c1" --progress none)
j6=$(t "$LT" pull "$ref" -o "$work/o6/" --cache-dir "$work/c6" --progress none)
mem=$(rss "$LT" pull "$ref" -o "$work/o7/" --cache-dir "$work/c7" --progress none)
sk=$(t skopeo copy --src-tls-verify=false "docker://$ref" "oci:$work/sk:1")
docker rmi -f "$ref" >/dev/null 2>&1 || true
dp=$(t docker pull "$ref")
docker rmi -f "$ref" >/dev/null 2>&1 || true
{
  echo
  echo "## $(date -u +%Y-%m-%d\ %H:%M) UTC — 8 layers, $((size / 1000000)) MB stored, 50 ms/request, 20 MB/s per connection"
  echo
  echo "| client | seconds |"
  echo "|---|---|"
  echo "| layertool pull -o DIR --jobs 1 | $j1 |"
  echo "| layertool pull -o DIR (6 jobs) | $j6 |"
  echo "| skopeo copy docker:// oci: | $sk |"
  echo "| docker pull (engine 20.10) | $dp |"
  echo
  echo "layertool pull max RSS: ${mem} KB"
} | tee -a bench/pull/RESULTS.md
