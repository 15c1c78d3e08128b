#!/usr/bin/env bash
# `docker compose` for compose/docker-compose.yml, whichever front end this
# machine has (the plugin, or Debian's docker-compose 1.29 with
# --compatibility so deploy: limits apply), after making sure the engine and
# the base image are there (tools/docker_engine.sh).
#
#   bash tools/compose.sh up --build        # what `make compose` runs
#   bash tools/compose.sh --profile cloud up --build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EDGEGW_BASE_IMAGE="$(bash tools/docker_engine.sh | tail -1)"
# The host's own CAs (e.g. a TLS-intercepting proxy's) go into the stage
# image's trust store, so pip inside the build reaches PyPI as the host does.
mkdir -p compose/build-ca
find compose/build-ca -name '*.crt' -delete
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt compose/build-ca/
fi
export EDGEGW_BASE_IMAGE
if docker compose version >/dev/null 2>&1; then
  exec docker compose -f compose/docker-compose.yml "$@"
fi
exec docker-compose --compatibility -f compose/docker-compose.yml "$@"
