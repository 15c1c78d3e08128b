"""Readers for seed 004's data folder (../shared/seed004 beside the repo).

The folder is found from, in order: an explicit path, the environment
variable EDGEGW_SEED004_DATA, then `../shared/seed004` relative to the repo
root. See that folder's README.md for every file's source and units.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from services.deployer.download_planner import LayerCatalog

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "seed004"
DATA_ENV = "EDGEGW_SEED004_DATA"


def data_dir(explicit: Path | str | None = None) -> Path:
    if explicit is not None:
        path = Path(explicit)
    elif os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV])
    else:
        path = DEFAULT_DATA_DIR
    if not (path / "layers.csv").is_file():
        raise FileNotFoundError(
            f"seed 004 data not found at {path} (set {DATA_ENV} or pass --data)"
        )
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True, slots=True)
class Request:
    analytic_type: str
    arrival_minute: int
    lifetime_minutes: int


def load_catalog(folder: Path) -> LayerCatalog:
    """layers.csv: a layer listed with two sizes keeps its first row's size (the
    seed's IDA keeps whichever image it reads first; rows go yolo1..audio12)."""
    sizes: dict[str, int] = {}
    layers: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in _rows(folder / "layers.csv"):
        sizes.setdefault(row["layer_id"], int(row["compressed_bytes"]))
        layers[row["image"]].append((int(row["position"]), row["layer_id"]))
    return LayerCatalog(
        layer_bytes=sizes,
        image_layers={
            image: tuple(lid for _, lid in sorted(rows)) for image, rows in layers.items()
        },
    )


def load_requests(path: Path) -> list[Request]:
    return [
        Request(row["type"], int(row["arrival_minute"]), int(row["lifetime_minutes"]))
        for row in _rows(path)
    ]


def load_weights(folder: Path) -> dict[int, list[float]]:
    """weights.csv: version -> the 24 weights by position p1..p24."""
    by_version: dict[int, dict[int, float]] = defaultdict(dict)
    for row in _rows(folder / "weights.csv"):
        by_version[int(row["version"])][int(row["position"][1:])] = float(row["weight"])
    return {v: [w[p] for p in range(1, 25)] for v, w in sorted(by_version.items())}


def load_models(folder: Path) -> dict[str, Any]:
    models: dict[str, Any] = orjson.loads((folder / "models.json").read_bytes())
    return models


def load_results(folder: Path) -> list[dict[str, str]]:
    return _rows(folder / "results.csv")


def load_result_minutes(folder: Path) -> list[dict[str, str]]:
    return _rows(folder / "results_minutes.csv")


def request_files(folder: Path) -> list[Path]:
    return sorted((folder / "requests").glob("requests_*.csv"))
