"""A valid example of each deploy message (for tests that start from one,
e.g. the hostile-JSON test's EXAMPLES)."""

from __future__ import annotations

from typing import Any

DEPLOY_EXAMPLES: dict[str, dict[str, Any]] = {
    "DeployRequest": {
        "source": "operator",
        "action": "deploy",
        "request": {
            "analytic": "counter",
            "image": "edgegw-analytics/hello:1",
            "upload_saving_kbps": 640.0,
            "lifetime_s": 60.0,
            "limits": {"cpus": 0.5, "memory_mb": 64, "pids": 64},
            "environment": {"PERIOD_S": "1"},
            "topics": [{"spec": "analytic_output", "direction": "publish", "params": {}}],
            "restart": "on-failure",
            "max_restarts": 2,
        },
    },
    "LifecycleRequest": {"source": "operator", "action": "stop", "analytic": "counter"},
    "AnalyticState": {
        "source": "deployer",
        "analytic": "counter",
        "state": "downloading",
        "desired": "running",
        "reason": "",
        "request_id": "r1",
        "container_id": None,
        "queue_position": None,
        "restarts": 0,
        "started_ts": None,
        "download": {
            "bytes_done": 10,
            "bytes_total": 100,
            "layers_total": 5,
            "layers_cached": 4,
            "attempt": 1,
        },
        "exit": {"code": 3, "oom_killed": False, "log_tail": ["giving up"]},
    },
    "Hosting": {"source": "deployer", "hosted": "gateway", "state": "running"},
    "DownloadSlot": {
        "source": "deployer",
        "slot": 3,
        "planner": "greedy",
        "solve_ms": 0.4,
        "budget_bytes": 1000,
        "capacity_bytes": 500,
        "cache_bytes_before": 900,
        "cache_bytes_after": 400,
        "planned_bytes": 300,
        "saved_kbps": 688.0,
        "chosen": ["audio0"],
        "deferred": ["yolo0"],
        "images": ["127.0.0.1:5000/live-seed/audio0:1"],
        "evicted": [
            {"image": "127.0.0.1:5000/live-seed/yolo1:1", "freed_bytes": 500, "why": "room"}
        ],
        "cached": ["127.0.0.1:5000/live-seed/audio0:1"],
        "unlisted": 0,
    },
}
