"""A sample alert the outbox and confirmation tests share."""

from __future__ import annotations

from schemas.alerts import Alert, AlertPart


def sample_alert(number: int) -> Alert:
    """The n-th `new` of a critical gas alert, ids numbered."""
    return Alert(
        source="alert-forwarder", id=f"a{number}.new.x", type="new", alert_id=f"a{number}",
        label="co_high", severity="critical", start_ts=1.0,
        parts=[AlertPart(source="kitchen", kind="gas", event_id=f"e{number}", label="co_high")],
    )  # fmt: skip
