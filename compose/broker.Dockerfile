# The gateway broker: Debian's Mosquitto 2 with the project's config and the
# ACL generated from the topic registry; passwords come from the environment.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto \
 && rm -rf /var/lib/apt/lists/*
COPY broker/mosquitto.conf /mosquitto/config/mosquitto.conf
COPY broker/acl /mosquitto/config/acl
COPY compose/broker-entrypoint.sh /usr/local/bin/broker-entrypoint
RUN chmod 755 /usr/local/bin/broker-entrypoint \
 && mkdir -p /mosquitto/data && chown -R mosquitto:mosquitto /mosquitto
EXPOSE 1883
ENTRYPOINT ["broker-entrypoint"]
