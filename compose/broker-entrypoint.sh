#!/bin/sh
# Write the password file from EDGEGW_PASSWORD_<USER> variables (compose/.env,
# made by `python -m broker.generate compose-env`), hash it, start Mosquitto.
set -eu
passwd=/mosquitto/config/passwd
: > "$passwd"
env | grep '^EDGEGW_PASSWORD_' | while IFS='=' read -r name value; do
  user=$(echo "${name#EDGEGW_PASSWORD_}" | tr 'A-Z_' 'a-z-')
  printf '%s:%s\n' "$user" "$value" >> "$passwd"
done
[ -s "$passwd" ] || { echo "no EDGEGW_PASSWORD_* variables: run make compose-env" >&2; exit 2; }
mosquitto_passwd -U "$passwd"
chown mosquitto:mosquitto "$passwd" && chmod 600 "$passwd"
exec mosquitto -c /mosquitto/config/mosquitto.conf
