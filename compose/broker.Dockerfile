# The gateway broker: Debian's Mosquitto 2 with the project's config and its
# dynamic security plugin; the plugin's config (roles from the topic registry,
# identities with password hashes) is made by `make compose-env` and mounted.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto mosquitto-clients \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L mosquitto | grep '/mosquitto_dynamic_security.so$')" /usr/lib/mosquitto_dynamic_security.so \
 && test -e /usr/lib/mosquitto_dynamic_security.so
COPY broker/mosquitto.conf /mosquitto/config/mosquitto.conf
COPY compose/broker-entrypoint.sh /usr/local/bin/broker-entrypoint
RUN chmod 755 /usr/local/bin/broker-entrypoint \
 && mkdir -p /mosquitto/data && chown -R mosquitto:mosquitto /mosquitto
EXPOSE 1883
ENTRYPOINT ["broker-entrypoint"]
