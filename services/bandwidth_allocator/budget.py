"""The upload budget when it follows what the cloud bridge measures.

`uplink/usage` reports what the bridge uploaded (`used_kbps`) and whether
messages wait in its spool. Usage alone is not the link's capacity: the
bridge only uploads what the analytics produce, and they produce what the
allocator allowed, so "budget := usage" would spiral down to the floor. The
spool tells the two cases apart:

- spool backlog while connected, and the bridge uploads clearly less than
  the budget: the link is the bottleneck, and what it delivers
  (`used_kbps`) is its goodput: the budget drops to it at once;
- backlog while the bridge uploads about the whole budget: the bridge's own
  rate limit (set to this budget) holds the messages, not the link; the
  budget holds too (dropping to `used_kbps` here would ratchet it down to
  the floor, since a rate-limited bridge never uploads more than allowed);
- no backlog: the link keeps up, so the budget probes upwards by
  `growth` per report (multiplicative increase, like TCP's slow start),
  starting at the ceiling when nothing is known yet;
- cloud unreachable: everything spools; the budget goes to the floor.

Always clamped to [floor, ceiling] from the operator's config.
"""

from __future__ import annotations

from schemas.alerts import UplinkUsage

# A measured budget that moved by less than this share does not re-solve:
# the window's jitter would otherwise republish the plan on every report.
RESOLVE_CHANGE = 0.02
# Uploading at least this share of the budget with a backlog: rate-limited.
RATE_LIMITED_SHARE = 0.9


def next_measured_budget(
    previous: float | None,
    usage: UplinkUsage,
    floor_kbps: float,
    ceiling_kbps: float,
    growth: float,
) -> float:
    if not usage.cloud_connected:
        target = floor_kbps
    elif usage.spool_entries > 0:
        if previous is None or usage.used_kbps < RATE_LIMITED_SHARE * previous:
            target = usage.used_kbps
        else:
            target = previous
    else:
        target = ceiling_kbps if previous is None else previous * growth
    return min(ceiling_kbps, max(floor_kbps, target))


def changed_enough(old: float | None, new: float) -> bool:
    if old is None:
        return True
    return abs(new - old) > RESOLVE_CHANGE * max(old, 1e-9)
