# The time-series server telemetry-recorder writes to: Debian's VictoriaMetrics,
# which accepts the InfluxDB v2 write API (/api/v2/write) the recorder speaks.
# A site with its own InfluxDB 2 points EDGEGW_INFLUX_URL (and the token) there.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# Set by `make images OFFLINE=1`: packages come from the offline bundle only.
ARG BUNDLE_URL=
COPY compose/install.sh /usr/local/bin/edgegw-install
RUN edgegw-install apt victoria-metrics \
 && mkdir -p /var/lib/victoria-metrics
EXPOSE 8428
ENTRYPOINT ["/usr/bin/victoria-metrics", "-storageDataPath=/var/lib/victoria-metrics", "-httpListenAddr=:8428", "-retentionPeriod=30d"]
