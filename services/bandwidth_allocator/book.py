"""Which analytics take part in the allocation, and how they map to stages.

An analytic is offered by the stage that runs it: the retained
`qos/<analytic>/levels` message's `source` field names that stage. It takes
part while that stage is not known to be offline:

- an empty retained payload on `qos/<analytic>/levels` withdraws it for good
  (the stage retracted its offer);
- `offline` on `status/<source>` (a clean stop or the stage's last will)
  parks every analytic of that stage: its budget goes to the others;
- `online` on `status/<source>` brings them back with the levels they had,
  since the broker still holds them retained; a stage that no longer offers
  an analytic clears its retained levels.

A stage that never announced a status (a test probe, a device publishing its
own levels) counts as present.

Where each analytic runs comes from the deployer (`deploy/hosting/<analytic>`):
one in the cloud is charged its raw upload, one on the gateway (or one the
deployer says nothing of: the static stages) its results.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.qos import Hosted, QosLevels


class TooManyAnalytics(Exception):
    pass


class AnalyticBook:
    def __init__(self, max_analytics: int) -> None:
        self._max = max_analytics
        self._offers: dict[str, QosLevels] = {}
        self._offline: set[str] = set()
        self._hosting: dict[str, Hosted] = {}

    def offer(self, levels: QosLevels) -> bool:
        """Add or replace an analytic's levels; True if the active set changed."""
        previous = self._offers.get(levels.analytic)
        if previous is None and len(self._offers) >= self._max:
            raise TooManyAnalytics(f"already {self._max} analytics; {levels.analytic} refused")
        self._offers[levels.analytic] = levels
        same = previous is not None and (
            previous.levels == levels.levels and previous.source == levels.source
        )
        return not same and (
            levels.source not in self._offline
            or (previous is not None and previous.source not in self._offline)
        )

    def withdraw(self, analytic: str) -> bool:
        previous = self._offers.pop(analytic, None)
        return previous is not None and previous.source not in self._offline

    def host(self, analytic: str, hosted: Hosted | None) -> bool:
        """Record where an analytic runs (None: forget it); True if that
        changes what an active analytic costs."""
        previous = self._hosting.get(analytic)
        if hosted is None:
            self._hosting.pop(analytic, None)
        elif previous is None and len(self._hosting) >= self._max:
            raise TooManyAnalytics(f"already {self._max} hosted analytics; {analytic} refused")
        else:
            self._hosting[analytic] = hosted
        offer = self._offers.get(analytic)
        return (
            (previous or "gateway") != (hosted or "gateway")
            and offer is not None
            and offer.source not in self._offline
        )

    def hosting(self) -> Mapping[str, Hosted]:
        """Where the analytics the deployer told of run (a copy)."""
        return dict(self._hosting)

    def stage_status(self, stage: str, online: bool) -> bool:
        """Record a stage's availability; True if that changes the active set."""
        was_offline = stage in self._offline
        if online:
            self._offline.discard(stage)
        else:
            self._offline.add(stage)
        if was_offline == (not online):
            return False
        return any(levels.source == stage for levels in self._offers.values())

    def active(self) -> list[QosLevels]:
        """The analytics to allocate now, by name (solvers are deterministic)."""
        return [
            self._offers[name]
            for name in sorted(self._offers)
            if self._offers[name].source not in self._offline
        ]

    def __len__(self) -> int:
        return len(self._offers)
