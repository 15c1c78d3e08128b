# The time-series server telemetry-recorder writes to: Debian's VictoriaMetrics,
# which accepts the InfluxDB v2 write API (/api/v2/write) the recorder speaks.
# A site with its own InfluxDB 2 points EDGEGW_INFLUX_URL (and the token) there.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends victoria-metrics \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/victoria-metrics
EXPOSE 8428
ENTRYPOINT ["/usr/bin/victoria-metrics", "-storageDataPath=/var/lib/victoria-metrics", "-httpListenAddr=:8428", "-retentionPeriod=30d"]
