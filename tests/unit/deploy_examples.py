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
}
