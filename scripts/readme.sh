#!/usr/bin/env bash
# README.md is assembled from docs/readme/NN-*.md (one fragment per area, kept next to the people who
# change that area). Run after editing a fragment: scripts/readme.sh
set -euo pipefail
cd "$(dirname "$0")/.."
{
  for f in docs/readme/[0-9][0-9]-*.md; do cat "$f"; echo; done
} | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > README.md.tmp
mv README.md.tmp README.md
