#!/usr/bin/env bash
# The test command of README.md (and of CI): ensures a Docker engine and the offline base images, then
# runs every test project. Extra arguments go to `dotnet test` (e.g. --filter).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v dotnet >/dev/null 2>&1 || { echo "test: the .NET 10 SDK is needed (dotnet on PATH)" >&2; exit 1; }

# A real engine: the one that answers, or a private dockerd started (and installed) by engine.sh.
eval "$(scripts/engine.sh up --debian)"
export DOCKER_HOST
# The registry tests' docker-registry (distribution 2.8) and htpasswd, installed when missing.
scripts/registry.sh install >/dev/null
# The third-party schemas the plan export tests validate against (GitLab CI schema, Argo Workflow validator), from
# npm into a cache outside git.
export LAYERTOOL_SCHEMAS="$(scripts/schemas.sh)"

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
dotnet test LayerTool.sln -c Release --logger "trx" --results-directory "$results" "$@" || status=$?

# One plain summary line over all test assemblies.
passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${n:-0}))
done
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
