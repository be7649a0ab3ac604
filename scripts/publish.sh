#!/usr/bin/env bash
# Publishes the layertool executable for this machine and prints its path.
#
#   scripts/publish.sh [--aot|--r2r] [OUTDIR]      (default: --aot into artifacts/layertool)
#
# --aot (default): a Native AOT binary. It starts in ~20 ms instead of ~250 ms of JIT warm-up, which is most
#   of a fully cached build's time. Needs clang and zlib; as root on Debian they are installed when missing
#   (apt-get install clang lld zlib1g-dev). Without them the script falls back to --r2r and says so.
# --r2r: framework-dependent ReadyToRun (precompiled, still JIT for generics and reflection-emitted code).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=aot
out=artifacts/layertool
for arg in "$@"; do
  case "$arg" in
    --aot) mode=aot ;;
    --r2r) mode=r2r ;;
    -*) echo "publish: unknown option $arg" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done
command -v dotnet >/dev/null 2>&1 || { echo "publish: the .NET 10 SDK is needed (dotnet on PATH)" >&2; exit 1; }

case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64) rid=linux-arm64 ;;
  *) echo "publish: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

have_toolchain() { command -v clang >/dev/null 2>&1 && { [ -e /usr/lib/x86_64-linux-gnu/libz.so ] || [ -e /usr/lib/aarch64-linux-gnu/libz.so ] || ldconfig -p | grep -q 'libz\.so '; }; }
if [ "$mode" = aot ] && ! have_toolchain; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "publish: installing clang, lld and zlib1g-dev for Native AOT" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang lld zlib1g-dev >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang lld zlib1g-dev >/dev/null 2>&1; } || true
  fi
  have_toolchain || { echo "publish: no clang/zlib for Native AOT; publishing ReadyToRun instead" >&2; mode=r2r; }
fi

mkdir -p "$out"
if [ "$mode" = aot ]; then
  dotnet publish src/LayerTool.Cli -c Release -r "$rid" -p:PublishAot=true -p:PackAsTool=false -v quiet -nologo -o "$out" >&2
else
  dotnet publish src/LayerTool.Cli -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -v quiet -nologo -o "$out" >&2
fi
echo "$(cd "$out" && pwd)/layertool"
