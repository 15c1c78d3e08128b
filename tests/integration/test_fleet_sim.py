"""`make fleet-sim` reduced to five gateways: each its own Mosquitto and
cloud-bridge process into one TLS cloud broker (tools/fleet_sim.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tools.fleet_sim import FleetOptions, jain_index, run_fleet


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_five_gateways_into_one_cloud(tmp_path: Path) -> None:
    options = FleetOptions(gateways=5, alerts_per_gateway=20, squeeze_s=6.0, time_limit_s=150.0)
    result: dict[str, Any] = run_fleet(tmp_path, options)

    assert result["startup"]["bridges_online_at_cloud"] == 5, result
    config = result["config"]
    assert config["reached"] == 5 and config["within_deadline"] == 5, config
    alerts = result["alerts"]
    assert alerts["published"] == 100 and alerts["arrived"] == 100, alerts
    fairness = result["fairness"]
    assert fairness["squeezed_alerts_arrived_after_release"] == fairness["squeezed_alerts"]
    # The squeeze held them back: together they got no more than the backhaul.
    assert fairness["tcp_only"]["delivered_kbps_total"] <= fairness["backhaul_kbps"]
    assert fairness["with_equal_budgets"]["jain_index"] >= 0.9, fairness
    assert result["ok"] is True
    assert result["seconds"] <= 150


def test_jain_index_is_one_for_equal_shares_and_one_over_n_for_one_taker() -> None:
    assert jain_index([3.0, 3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert jain_index([8.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
