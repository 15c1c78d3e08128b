#!/usr/bin/env bash
# `make test`'s pytest runs: the slow suites (`-m slow`: image builds, the
# compose and swarm stacks, the offline build; mostly waiting on the Docker
# engine) in two groups beside the unit tests, which assert no timings (the
# two swarm tests, and the rest: one after the other they took 727 s, the
# longest part of the run); then the other integration and end-to-end tests
# alone, since many of them measure rates and deadlines on this machine's
# cores. Every run's output is printed; the exit status
# fails if any failed. The slow groups share the engine: each uses its own
# registry port, image tags, stack or project name and network namespace.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
swarm_log=$(mktemp -t edgegw-slow-swarm-XXXXXX.log)
slow_log=$(mktemp -t edgegw-slow-XXXXXX.log)
start=$SECONDS

"$PY" -m pytest -q -m slow -p no:cacheprovider --basetemp=/tmp/edgegw-pytest-swarm \
    tests/e2e/test_swarm.py >"$swarm_log" 2>&1 &
swarm_pid=$!
"$PY" -m pytest -q -m slow -p no:cacheprovider --basetemp=/tmp/edgegw-pytest-slow \
    --ignore=tests/e2e/test_swarm.py >"$slow_log" 2>&1 &
slow_pid=$!
"$PY" -m pytest -q tests/unit --basetemp=/tmp/edgegw-pytest-unit
unit=$?
echo "== unit tests: exit $unit after $((SECONDS - start)) s; waiting for the slow suites"
wait "$swarm_pid"
swarm=$?
echo "== slow swarm tests: exit $swarm after $((SECONDS - start)) s"
cat "$swarm_log"
wait "$slow_pid"
slow=$?
echo "== other slow suites (-m slow): exit $slow after $((SECONDS - start)) s"
cat "$slow_log"
rm -f "$swarm_log" "$slow_log"
slow=$((swarm || slow))

"$PY" -m pytest -q -m "not slow" tests/integration tests/e2e --basetemp=/tmp/edgegw-pytest-rest
rest=$?
echo "== unit $unit, slow $slow, integration and e2e $rest; $((SECONDS - start)) s in all"
exit $((unit || slow || rest))
