#!/bin/sh
# Install the dynamic security config that `make compose-env` generated from
# the topic registry and compose/.env (mounted read-only), where the broker can
# rewrite it (the plugin saves every change made over $CONTROL), then start.
# Each start installs it afresh: the static identities follow compose/.env;
# identities created at run time are the deployer's to create again.
# EDGEGW_DYNSEC_SEED: where the seed is mounted (a swarm secret: /run/secrets/...).
set -eu
seed=${EDGEGW_DYNSEC_SEED:-/run/edgegw/dynamic-security.json}
config=/mosquitto/data/dynamic-security.json
[ -s "$seed" ] || { echo "no $seed: run make compose-env" >&2; exit 2; }
cp "$seed" "$config"
chown mosquitto:mosquitto "$config" && chmod 600 "$config"
exec mosquitto -c /mosquitto/config/mosquitto.conf
