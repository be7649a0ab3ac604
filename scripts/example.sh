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

echo "== engine (scripts/engine.sh up --debian)"
eval "$(scripts/engine.sh up --debian)"
export DOCKER_HOST
echo "== layertool build examples/tag-and-compress (TAG sshd:latest mid-build, COMPRESS onto debian:bookworm)"
layertool build --network none -t tag-and-compress:latest examples/tag-and-compress
echo "== the TAGged intermediate image and the COMPRESSed result"
docker image inspect --format '{{.RepoTags}} {{len .RootFS.Layers}} layers' sshd:latest tag-and-compress:latest debian:bookworm
docker history tag-and-compress:latest
echo "== layertool build examples/multi-stage"
layertool build --network none -t multi-stage:latest examples/multi-stage
docker run --rm --network none multi-stage:latest
