"""`make bench`: every benchmark, each in its own process, merged into one JSON.

Each benchmark prints one JSON object whose numbers are ratios against a
baseline measured in the same run (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

BENCHMARKS: dict[str, list[str]] = {
    "gas_throughput": ["tests.bench.gas_throughput"],
    "allocator": ["tests.bench.allocator_bench", "--plot", "bench-results/allocator.png"],
    "audio": ["tests.bench.audio_bench"],
    "uplink": ["tests.bench.uplink_bench"],
    "telemetry": ["tests.bench.telemetry_bench"],
    "detector": ["tests.bench.detector_bench"],
    "memory": ["tests.bench.memory_bench"],
    "web": ["tests.bench.web_bench"],
    "seed004": ["tests.bench.seed004_bench"],
    "deploy": ["tests.bench.deploy_bench"],
    "container_overhead": ["tests.bench.container_overhead"],
}


def run_one(module_and_args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", *module_and_args],
        capture_output=True,
        timeout=1800,
        check=False,
    )
    text = done.stdout.decode()
    if done.returncode != 0 or "{" not in text:
        return {"error": f"exit {done.returncode}: {done.stderr.decode()[-2000:]}"}
    result: dict[str, Any] = orjson.loads(text[text.index("{") :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for name, command in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.update(run_one(command))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    if any("error" in value for value in results.values() if isinstance(value, dict)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
