#!/usr/bin/env bash
# The main job on the built-in example: sets up what it needs (engine, base images, LayerTool itself),
# then runs LayerTool on examples/. Usage: scripts/example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null 2>&1 || { echo "example: the .NET 10 SDK is needed (dotnet on PATH)" >&2; exit 1; }

dotnet build src/LayerTool.Cli -c Release -v quiet -nologo >/dev/null
layertool() { dotnet src/LayerTool.Cli/bin/Release/net10.0/layertool.dll "$@"; }

echo "== layertool parse examples/seed/Dockerfile"
layertool parse -f examples/seed/Dockerfile
echo "== layertool lint examples/seed/Dockerfile"
layertool lint -f examples/seed/Dockerfile
