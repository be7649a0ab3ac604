#!/usr/bin/env bash
# bench/deep-paths/measure.sh — peak memory and time of `layers`, `diff` and `squash --input` on one file at a
# path of N segments of 16 bytes (gen.py), for each N given (default: 1000 2000 4096 8000 16000 62000; past 4,096
# segments or 64 KiB the path is refused, and what is measured is the refusal).
#
# Usage: bench/deep-paths/measure.sh [N...]
# Environment: LAYERTOOL (command to run layertool; default: dotnet on this checkout's Release build of the CLI).
# Prints one line per command: N, command, exit code, max RSS (/usr/bin/time -v) and elapsed time; after a squash,
# the size of the archive it wrote.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAYERTOOL=${LAYERTOOL:-"dotnet $ROOT/src/LayerTool.Cli/bin/Release/net10.0/layertool.dll"}
WORK=$(mktemp -d /tmp/layertool-deep.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[ $# -gt 0 ] || set -- 1000 2000 4096 8000 16000 62000

run() { # N NAME command...
  local n=$1 name=$2; shift 2
  local code=0
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || code=$?
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$WORK/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
  printf '%6s %-28s exit %d  max RSS %5s MB  elapsed %s' "$n" "$name" "$code" "$rss" "$wall"
  [ "$code" -eq 0 ] || printf '  (%s)' "$(head -c 140 "$WORK/err.txt" | tr '\n' ' ')"
  printf '\n'
}

for n in "$@"; do
  python3 "$ROOT/bench/deep-paths/gen.py" "$n" "$WORK/d$n.tar" >/dev/null
  run "$n" layers $LAYERTOOL layers "deep:$n" --input "$WORK/d$n.tar"
  run "$n" "diff (deep vs deep)" $LAYERTOOL diff "deep:$n" "deep:$n" --input "$WORK/d$n.tar"
  run "$n" "squash --onto scratch" $LAYERTOOL squash "deep:$n" --onto scratch --input "$WORK/d$n.tar" --output "$WORK/out$n.tar"
  [ -f "$WORK/out$n.tar" ] && printf '%6s %-28s %s bytes\n' "$n" "  squashed archive" "$(stat -c %s "$WORK/out$n.tar")"
  rm -f "$WORK/d$n.tar" "$WORK/out$n.tar"
done
