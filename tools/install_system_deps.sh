#!/usr/bin/env bash
# Install the Debian packages edgegw's demo, tests and benchmarks need, when
# they are missing. Idempotent; needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail

# command-or-file  package
wanted=(
  "mosquitto mosquitto"
  "mosquitto_pub mosquitto-clients"
  "unzip unzip"
  "npm npm"
  "oggdec vorbis-tools"
  "victoria-metrics victoria-metrics"
  "arecord alsa-utils"
  "openssl openssl"
  "prometheus prometheus"
  "chromium chromium"
  "chromedriver chromium-driver"
  "kubectl kubernetes-client"
  "docker-registry docker-registry"
  "busybox busybox-static"
)

missing=()
for entry in "${wanted[@]}"; do
  read -r probe package <<<"$entry"
  if ! command -v "$probe" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$probe" ]; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
echo "installing: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
