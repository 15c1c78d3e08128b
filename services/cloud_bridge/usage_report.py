"""The retained `uplink/usage` message, from the accounting and the spool."""

from __future__ import annotations

from typing import Any, Literal

from schemas.alerts import UplinkUsage
from schemas.topics import CLOUD_BRIDGE
from services.cloud_bridge.spool import SpoolStats


def usage_message(
    accounting: dict[str, Any],
    stats: SpoolStats,
    *,
    cloud_connected: bool,
    budget_source: Literal["config", "allocator"],
    analytic_rates_kbps: dict[str, float] | None = None,
    disk_full: bool = False,
    disk_errors: int = 0,
) -> UplinkUsage:
    """`accounting` is `UploadAccounting.snapshot()`; losses are cumulative."""
    by_class: dict[str, dict[str, int]] = accounting["by_class"]
    by_analytic: dict[str, dict[str, int]] = accounting["by_analytic"]
    losses = {
        f"{message_class}_{reason}": usage.entries
        for message_class, reasons in stats.losses.items()
        for reason, usage in reasons.items()
        if usage.entries
    }
    return UplinkUsage(
        source=CLOUD_BRIDGE,
        budget_kbps=accounting["budget_kbit_s"],
        window_s=accounting["window_s"],
        used_kbps=round(accounting["rate_kbit_s"], 3),
        bytes_by_class={name: counter["bytes"] for name, counter in by_class.items()},
        messages_by_class={name: counter["messages"] for name, counter in by_class.items()},
        bytes_by_analytic={name: counter["bytes"] for name, counter in by_analytic.items()},
        spool_entries=stats.total_entries,
        spool_bytes=stats.total_bytes,
        spool_max_bytes=stats.max_bytes,
        losses=losses,
        cloud_connected=cloud_connected,
        budget_used=accounting["budget_used"],
        budget_source=budget_source,
        analytic_rates_kbps=analytic_rates_kbps or {},
        spool_disk_full=disk_full,
        spool_disk_errors=disk_errors,
    )
