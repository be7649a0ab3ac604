#!/usr/bin/env bash
# bench/rebase/run.sh — `layertool rebase` of an app onto a patched base, against rebuilding the app on
# the patched base with docker's BuildKit.
#
# Makes a busybox base v1 (docker import of a folder) and a patched v2 (a library changed, one added, one
# removed), builds an app on v1 whose RUN does ~20 s of real work (sha256 over zeros, in a loop), then times
#   A  layertool rebase APP --onto v2 --from v1 -t APP:rebased   (cold base-index cache; then again, warm, when
#      the engine already has the own layers over v2: config + manifest only)
#   B  DOCKER_BUILDKIT=1 /usr/bin/docker build (same Dockerfile, FROM v2: a cache miss from the first RUN)
# and prints both times and the bytes the rebase sent to the engine (its --json `bytesSent`).
#
# Then, when docker-registry (scripts/registry.sh) is installed, the same rebase in a registry on 127.0.0.1:
#   C  layertool push v1, v2 and the app; layertool rebase --registry APP --onto v2 --from v1 -t APP-rebased,
#      with cold caches (blob cache, base indexes, file lists) and again warm; the registry's access log counts
#      the requests and the bytes of every blob GET; --json gives the bytes uploaded.
#
# Usage: bench/rebase/run.sh [LOOPS]   (LOOPS of the RUN's sha256 over 1 MiB; default 2000, ~20 s here)
# Environment: LAYERTOOL (command to run layertool; default: scripts/publish.sh's build of this checkout),
#              LAYERTOOL_REGISTRY (the layertool for part C; default: LAYERTOOL),
#              DOCKER_HOST (default: the private engine of scripts/engine.sh).
# Everything it creates carries the label layertool.bench=1 (images: bench-rebase/*) and is removed at the end.
set -euo pipefail

LOOPS=${1:-2000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/layertool/docker.sock}
WORK=$(mktemp -d /tmp/layertool-bench-rebase.XXXXXX)
TAG=bench-rebase/app:$$
IMAGES=(bench-rebase/base:v1-$$ bench-rebase/base:v2-$$ "$TAG" "$TAG-rebased" "$TAG-again" "$TAG-rebuilt")

REGISTRY_PID=
cleanup() {
  [ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null || true
  docker image rm -f "${IMAGES[@]}" >/dev/null 2>&1 || true
  docker ps -aq --filter "label=layertool.bench=1" | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }

if [ -z "${LAYERTOOL:-}" ]; then
  say "publishing layertool (scripts/publish.sh)..."
  LAYERTOOL=$("$ROOT/scripts/publish.sh")
fi

base() { # TAG LIBSSL EXTRA
  local dir=$WORK/$2
  mkdir -p "$dir/bin" "$dir/lib" "$dir/etc"
  cp /bin/busybox "$dir/bin/busybox"
  for a in sh echo dd sha256sum mkdir cat rm seq; do ln -sf busybox "$dir/bin/$a"; done
  head -c 3000000 /dev/urandom > "$dir/lib/libssl.so.3"
  echo "$3" > "$dir/lib/$3"
  tar -C "$dir" --owner=0 --group=0 -cf "$WORK/$2.tar" .
  docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' "$WORK/$2.tar" "$1" >/dev/null
}
base "${IMAGES[0]}" v1 libold.so
base "${IMAGES[1]}" v2 libnew.so

app_dockerfile() { # BASE
  cat <<DOCKERFILE
FROM $1
LABEL layertool.bench=1
RUN i=0; while [ \$i -lt $LOOPS ]; do dd if=/dev/zero bs=1M count=1 2>/dev/null | sha256sum > /dev/null; i=\$((i+1)); done; echo built > /built
COPY app.conf /etc/app.conf
RUN mkdir -p /srv && dd if=/dev/urandom of=/srv/data bs=1M count=8 2>/dev/null
DOCKERFILE
}
mkdir -p "$WORK/ctx"
echo "key=value" > "$WORK/ctx/app.conf"
app_dockerfile "${IMAGES[0]}" > "$WORK/ctx/Dockerfile"
say "building the app on v1 (BuildKit)..."
t0=$(now); DOCKER_BUILDKIT=1 /usr/bin/docker build -q --network none -t "$TAG" "$WORK/ctx" >/dev/null; t1=$(now)
build_v1=$(echo "$t1 - $t0" | bc)

say "rebasing onto v2 (cold base-index cache)..."
t0=$(now)
json=$($LAYERTOOL rebase "$TAG" --onto "${IMAGES[1]}" --from "${IMAGES[0]}" -t "$TAG-rebased" --cache-dir "$WORK/cache" --json)
t1=$(now)
rebase_cold=$(echo "$t1 - $t0" | bc)
say "rebasing onto v2 again (warm cache; the engine has the own layers over v2 now, so config + manifest suffice)..."
t0=$(now)
json_warm=$($LAYERTOOL rebase "$TAG" --onto "${IMAGES[1]}" --from "${IMAGES[0]}" -t "$TAG-again" --cache-dir "$WORK/cache" --json)
t1=$(now)
rebase_warm=$(echo "$t1 - $t0" | bc)

rebase_save=
if $LAYERTOOL rebase --help 2>/dev/null | grep -q -- '--no-fast-path'; then
  say "rebasing onto v2 again with --no-fast-path (a docker save of the app instead of the overlay2 store)..."
  IMAGES+=("$TAG-saved")
  t0=$(now)
  json_save=$($LAYERTOOL rebase "$TAG" --onto "${IMAGES[1]}" --from "${IMAGES[0]}" -t "$TAG-saved" --cache-dir "$WORK/cache" --json --no-fast-path)
  t1=$(now)
  rebase_save=$(echo "$t1 - $t0" | bc)
fi
t0=$(now); $LAYERTOOL --version >/dev/null; t1=$(now)
startup=$(echo "$t1 - $t0" | bc)

app_dockerfile "${IMAGES[1]}" > "$WORK/ctx/Dockerfile"
say "rebuilding the app on v2 (BuildKit)..."
t0=$(now); DOCKER_BUILDKIT=1 /usr/bin/docker build -q --network none -t "$TAG-rebuilt" "$WORK/ctx" >/dev/null; t1=$(now)
rebuild=$(echo "$t1 - $t0" | bc)

field() { printf '%s' "$1" | jq -r ".$2"; }
own=$(docker image inspect --format '{{len .RootFS.Layers}}' "$TAG")
printf 'date (UTC)                         %s\n' "$(date -u '+%Y-%m-%d %H:%M')"
printf 'app image                          %s layers, %s bytes\n' "$own" "$(docker image inspect --format '{{.Size}}' "$TAG")"
printf 'BuildKit build on v1               %.2f s\n' "$build_v1"
printf 'BuildKit rebuild on v2             %.2f s\n' "$rebuild"
printf 'layertool rebase, cold cache       %.2f s  (%s conflicts; loaded with %s, %s bytes sent)\n' "$rebase_cold" \
  "$(field "$json" conflicts)" "$(field "$json" loadedWith)" "$(field "$json" bytesSent)"
printf 'layertool rebase, again             %.2f s  (loaded with %s, %s bytes sent)\n' "$rebase_warm" \
  "$(field "$json_warm" loadedWith)" "$(field "$json_warm" bytesSent)"
[ -n "$rebase_save" ] && printf 'layertool rebase, --no-fast-path    %.2f s  (read with %s; loaded with %s, %s bytes sent)\n' "$rebase_save" \
  "$(field "$json_save" readWith)" "$(field "$json_save" loadedWith)" "$(field "$json_save" bytesSent)"
printf 'layertool --version (start-up)      %.3f s\n' "$startup"
printf 'read the app with                   %s\n' "$(field "$json_warm" readWith)"
printf 'own layer digests kept             %s\n' \
  "$([ "$(docker image inspect --format '{{json .RootFS.Layers}}' "$TAG" | jq -c '.[1:]')" = "$(docker image inspect --format '{{json .RootFS.Layers}}' "$TAG-rebased" | jq -c '.[1:]')" ] && echo yes || echo NO)"

# ---- C: the same rebase in a registry -------------------------------------------------------------------
LT_REG=${LAYERTOOL_REGISTRY:-$LAYERTOOL}
if ! [ -x /usr/bin/docker-registry ] || ! $LT_REG rebase --help 2>/dev/null | grep -q -- '--registry'; then
  say "skipping the registry rebase (no /usr/bin/docker-registry, or this layertool has no rebase --registry)"
  exit 0
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/registry"
cat > "$WORK/registry/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: 127.0.0.1:$port
YAML
/usr/bin/docker-registry serve "$WORK/registry/config.yml" > "$WORK/registry/access.log" 2>/dev/null &
REGISTRY_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
R=127.0.0.1:$port/bench-rebase
say "pushing v1, v2 and the app to the registry..."
XDG_CACHE_HOME=$WORK/push-cache $LT_REG push "${IMAGES[0]}" "$R/base:v1" --progress none >/dev/null
XDG_CACHE_HOME=$WORK/push-cache $LT_REG push "${IMAGES[1]}" "$R/base:v2" --progress none >/dev/null
XDG_CACHE_HOME=$WORK/push-cache $LT_REG push "$TAG" "$R/app:1" --progress none >/dev/null

# Requests in the access log since line $1: "N requests: G blob GETs (B bytes), M mounts, U blob uploads, P manifest PUTs"
requests() {
  tail -n +"$(($1 + 1))" "$WORK/registry/access.log" | awk '
    / "(GET|HEAD|POST|PUT|PATCH|DELETE) / { n++ }
    / "GET [^ ]*\/blobs\/sha256:/ { g++; split($0, q, "\""); split(q[3], f, " "); b += f[2] }
    / "POST [^ ]*mount=/ { m++ }
    / "(PUT|PATCH) [^ ]*\/blobs\/uploads\// { u++ }
    / "PUT [^ ]*\/manifests\// { p++ }
    END { printf "%d requests: %d blob GETs (%d bytes), %d mounts, %d blob upload requests, %d manifest PUTs", n, g, b, m, u, p }'
}
mark=$(wc -l < "$WORK/registry/access.log")
say "rebasing in the registry (cold caches)..."
t0=$(now)
rjson=$(XDG_CACHE_HOME=$WORK/reg-cache $LT_REG rebase --registry "$R/app:1" --onto "$R/base:v2" --from "$R/base:v1" -t "$R/app:1-rebased" \
  --cache-dir "$WORK/reg-index" --json)
t1=$(now)
reg_cold=$(echo "$t1 - $t0" | bc)
sleep 0.2
reg_cold_requests=$(requests "$mark")
mark=$(wc -l < "$WORK/registry/access.log")
say "rebasing in the registry again (warm caches)..."
t0=$(now)
rjson_warm=$(XDG_CACHE_HOME=$WORK/reg-cache $LT_REG rebase --registry "$R/app:1" --onto "$R/base:v2" --from "$R/base:v1" -t "$R/app:1-again" \
  --cache-dir "$WORK/reg-index" --json)
t1=$(now)
reg_warm=$(echo "$t1 - $t0" | bc)
sleep 0.2
reg_warm_requests=$(requests "$mark")
app_blobs=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$port/v2/bench-rebase/app/manifests/1" | jq '[.layers[].size] | add')
printf 'registry: app layer blobs           %s bytes (compressed)\n' "$app_blobs"
printf 'layertool rebase --registry, cold   %.2f s  (%s; %s bytes uploaded; %s own layers streamed, %s base layers streamed)\n' "$reg_cold" \
  "$reg_cold_requests" "$(field "$rjson" uploadedBytes)" "$(field "$rjson" layersStreamed)" "$(field "$rjson" baseLayersStreamed)"
printf 'layertool rebase --registry, warm   %.2f s  (%s; %s bytes uploaded)\n' "$reg_warm" "$reg_warm_requests" "$(field "$rjson_warm" uploadedBytes)"
printf 'registry: own layer digests kept    %s\n' \
  "$([ "$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$port/v2/bench-rebase/app/manifests/1" | jq -c '[.layers[1:][].digest]')" = \
       "$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$port/v2/bench-rebase/app/manifests/1-rebased" | jq -c '[.layers[1:][].digest]')" ] && echo yes || echo NO)"
