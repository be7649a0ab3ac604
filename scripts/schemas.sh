#!/usr/bin/env bash
# The third-party schemas the plan export tests validate against, fetched from the npm registry (never
# committed: they are other projects' files) into a cache outside the repository, and the cache's path printed.
#   scripts/schemas.sh            fetch what is missing; print the cache directory
# The cache: $LAYERTOOL_SCHEMA_CACHE, else $XDG_CACHE_HOME/layertool/schemas, else ~/.cache/layertool/schemas.
#
#   gitlab-ci.json   GitLab's CI schema (gitlab app/assets/javascripts/editor/schema/ci.json, draft-07, MIT),
#                    as bundled in the npm package gitlab-ci-local (MIT); extracted by schemas/extract-gitlab-ci-schema.mjs.
#   argo/            the npm package @kubernetes-models/argo-workflows (MIT): validators compiled (ajv) from the
#                    Workflow types of argo-workflows v4 (github.com/argoproj/argo-workflows/v4/pkg/apis/workflow/v1alpha1),
#                    run by schemas/validate-argo-workflow.mjs. Argo's own api/jsonschema/schema.json is not published
#                    on npm or NuGet, so it cannot be had here.
# SOURCES.md in the cache records the packages, versions and licences.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${LAYERTOOL_SCHEMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/layertool/schemas}"
gitlab_ci_local=4.75.1
argo_models=2.0.0

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "schemas: installing nodejs and npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends nodejs npm >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends nodejs npm >/dev/null; }
  fi
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "schemas: node and npm are needed (apt-get install nodejs npm)" >&2; exit 1; }
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! [ -s "$cache/gitlab-ci.json" ] || ! grep -q "gitlab-ci-local@$gitlab_ci_local" "$cache/SOURCES.md" 2>/dev/null; then
  (cd "$work" && npm pack --silent "gitlab-ci-local@$gitlab_ci_local" >/dev/null)
  tar -xzf "$work/gitlab-ci-local-$gitlab_ci_local.tgz" -C "$work" package/dist/index.js package/LICENSE
  node "$here/schemas/extract-gitlab-ci-schema.mjs" "$work/package/dist/index.js" "$work/gitlab-ci.json"
  mv "$work/gitlab-ci.json" "$cache/gitlab-ci.json"
  cp "$work/package/LICENSE" "$cache/gitlab-ci-local.LICENSE"
fi

if ! [ -f "$cache/argo/node_modules/@kubernetes-models/argo-workflows/package.json" ] \
   || ! grep -q "\"version\": \"$argo_models\"" "$cache/argo/node_modules/@kubernetes-models/argo-workflows/package.json"; then
  rm -rf "$cache/argo"
  mkdir -p "$cache/argo"
  printf '{ "private": true }\n' > "$cache/argo/package.json"
  (cd "$cache/argo" && npm install --silent --no-audit --no-fund --ignore-scripts --loglevel=error "@kubernetes-models/argo-workflows@$argo_models" >/dev/null)
fi
# The validator runs from inside the cache, where its package resolves.
cp "$here/schemas/validate-argo-workflow.mjs" "$cache/argo/validate-argo-workflow.mjs"

cat > "$cache/SOURCES.md" <<NOTES
# Schemas for LayerTool's plan export tests (fetched by scripts/schemas.sh; not part of LayerTool)

- gitlab-ci.json: GitLab's CI configuration schema (gitlab app/assets/javascripts/editor/schema/ci.json,
  JSON Schema draft-07), extracted from the bundle of the npm package gitlab-ci-local@$gitlab_ci_local
  (MIT, licence in gitlab-ci-local.LICENSE). GitLab's own source is MIT (GitLab CE).
- argo/: the npm package @kubernetes-models/argo-workflows@$argo_models (MIT) and its dependencies: JSON Schema
  validators (ajv, compiled) generated from argo-workflows v4's Go API types, the same types Argo's
  api/jsonschema/schema.json is generated from. Run by argo/validate-argo-workflow.mjs.
NOTES
echo "$cache"
