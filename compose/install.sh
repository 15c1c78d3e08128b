#!/bin/sh
# edgegw-install: what the images' RUN steps install, from the network as
# ever, or, when the BUNDLE_URL build arg is set (`make images OFFLINE=1`),
# only from the offline bundle served there (tools/offline_bundle.py):
#
#   edgegw-install apt <package>...   apt-get install --no-install-recommends
#   edgegw-install pip <pip install args>...
#
# With a bundle the Debian archive's sources are not read at all (apt sees one
# flat repository, `deb [trusted=yes] $BUNDLE_URL/debs ./`) and pip gets
# --no-index: a package missing from the bundle fails the build instead of
# being fetched from outside.
set -eu
mode="${1:?usage: edgegw-install apt|pip ...}"
shift
bundle="${BUNDLE_URL:-}"
bundle="${bundle%/}"

case "$mode" in
apt)
  export DEBIAN_FRONTEND=noninteractive
  if [ -n "$bundle" ]; then
    parts="$(mktemp -d)"
    echo "deb [trusted=yes] $bundle/debs ./" >"$parts/bundle.list"
    apt-get -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$parts" update
    apt-get -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$parts" \
      install -y --no-install-recommends "$@"
    rm -rf "$parts"
  else
    apt-get update
    apt-get install -y --no-install-recommends "$@"
  fi
  rm -rf /var/lib/apt/lists/*
  ;;
pip)
  if [ -n "$bundle" ]; then
    host="${bundle#*://}"
    host="${host%%/*}"
    host="${host%:*}"
    exec pip install --no-index --find-links "$bundle/wheels/" --trusted-host "$host" "$@"
  fi
  exec pip install "$@"
  ;;
*)
  echo "edgegw-install: unknown mode $mode (apt or pip)" >&2
  exit 2
  ;;
esac
