"""Seed 004's pricing: weight mappings and tables as models.json describes them."""

from __future__ import annotations

from schemas.qos import HOSTED
from services.bandwidth_allocator.seed004_pricing import (
    KINDS,
    Era,
    Seed004Models,
    WeightMapping,
    weight_of,
)
from tools import seed004_data

POSITIONS = [float(p) for p in range(1, 25)]  # weight p_k = k, so a weight names its position


def test_weight_mappings_follow_the_seed_index_mismatch() -> None:
    assert weight_of("audio3", POSITIONS, WeightMapping.SCORED) == 3
    assert weight_of("yolo3", POSITIONS, WeightMapping.SCORED) == 15
    assert weight_of("audio11", POSITIONS, WeightMapping.SCORED) == 11
    # RAA May bytecode: d = first digit of the number (11 -> 1), yolo -> p_{4+d}.
    assert weight_of("audio11", POSITIONS, WeightMapping.RAA_MAY) == 1
    assert weight_of("yolo12", POSITIONS, WeightMapping.RAA_MAY) == 5
    assert weight_of("yolo7", POSITIONS, WeightMapping.RAA_MAY) == 11
    assert weight_of("yolo7", POSITIONS, WeightMapping.RAA_AUG) == 19


def test_cloud_costs_raw_upload_and_gateway_costs_results() -> None:
    raw = seed004_data.load_models(seed004_data.data_dir())
    may = Seed004Models.from_json(raw, Era.MAY_2020)
    aug = Seed004Models.from_json(raw, Era.AUG_2020)
    # models.json -> bandwidth_models.*.at_k1
    for models, era in ((may, "may_2020_quadratic"), (aug, "aug_2020_linear")):
        at_k1 = raw["bandwidth_models"][era]["at_k1"]
        for kind in ("yolo", "audio"):
            assert abs(models.upload_kbps(kind, False, 1.0) - at_k1[f"{kind}_raw"]) < 1e-3
            assert abs(models.upload_kbps(kind, True, 1.0) - at_k1[f"{kind}_edge"]) < 1e-3
    # Levels: off first; on the gateway an audio analytic costs the same at any knob,
    # so its one useful level is the top accuracy.
    levels = may.knob_levels("audio", True)
    assert levels[0] == (0.0, (0.0, 0.0))
    assert max(point.utility for _, point in levels) == 0.9
    assert all(abs(point.cost_kbps - 0.0527) < 1e-9 for knob, point in levels if knob > 0)
    # Cloud yolo: the cheapest knob of each accuracy step (k <= threshold).
    yolo = dict((point.utility, knob) for knob, point in may.knob_levels("yolo", False))
    assert yolo[0.525] == 0.001 and yolo[0.64] == 0.201 and yolo[0.99] == 0.801


def test_one_level_table_prices_both_hostings_as_the_knob_levels_do() -> None:
    raw = seed004_data.load_models(seed004_data.data_dir())
    for era in Era:
        models = Seed004Models.from_json(raw, era)
        for kind in KINDS:
            for measured in (False, True):
                table = models.level_table(kind, measured=measured)
                for hosted in HOSTED:
                    on_gateway = hosted == "gateway"
                    expected = [
                        (point.cost_kbps, point.utility)
                        for _, point in models.knob_levels(kind, on_gateway, measured)
                    ]
                    priced = [(level.cost_hosted(hosted), level.utility) for level in table]
                    assert priced == expected, (era, kind, measured, hosted)
    yolo = Seed004Models.from_json(raw, Era.MAY_2020).level_table("yolo")
    top = yolo[-1]
    assert top.params == {"knob": 0.801} and top.raw_cost_kbps is not None
    assert top.raw_cost_kbps > top.cost_kbps > 0  # raw frames cost more than results
