#!/usr/bin/env bash
# Make sure a Docker engine and a compose front end are there, and a Debian
# bookworm base image to build edgegw's images on. Idempotent; needs root.
#
# * engine: Debian's docker.io; dockerd is started in the background when no
#   daemon answers (a gateway with systemd starts it as a service instead);
# * compose: the `docker compose` plugin when present, else Debian's
#   docker-compose (1.29);
# * base image: $EDGEGW_BASE_IMAGE, default debian:bookworm-slim. When it is
#   neither local nor pullable (a site whose only outside access is the
#   Debian archive), the same thing is made here: a minimal bookworm built
#   by debootstrap from the archive apt already uses, imported as
#   edgegw/debian:bookworm.
#
# Prints, on its last line, the base image to build FROM.
set -euo pipefail

log() { printf 'docker_engine: %s\n' "$*" >&2; }
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

install_packages() {
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  need+=(docker-compose)
fi
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  install_packages "${need[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  log "no Docker daemon answers: starting dockerd (log: /var/log/edgegw-dockerd.log)"
  "${sudo_cmd[@]}" sh -c 'nohup dockerd >/var/log/edgegw-dockerd.log 2>&1 &'
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/edgegw-dockerd.log"; exit 1; }
fi

base="${EDGEGW_BASE_IMAGE:-debian:bookworm-slim}"
local_base=edgegw/debian:bookworm
if docker image inspect "$base" >/dev/null 2>&1; then
  echo "$base"
  exit 0
fi
if timeout 60 docker pull -q "$base" >/dev/null 2>&1; then
  echo "$base"
  exit 0
fi
if docker image inspect "$local_base" >/dev/null 2>&1; then
  echo "$local_base"
  exit 0
fi
log "$base cannot be pulled: building $local_base with debootstrap from the Debian archive"
mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
mirror="${mirror:-http://deb.debian.org/debian}"
rootfs="$(mktemp -d)"
trap '"${sudo_cmd[@]}" rm -rf "$rootfs"' EXIT
"${sudo_cmd[@]}" debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
# The same trims debian:bookworm-slim makes: no apt lists or caches.
"${sudo_cmd[@]}" rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
"${sudo_cmd[@]}" tar -C "$rootfs" -c . | docker import - "$local_base" >/dev/null
echo "$local_base"
