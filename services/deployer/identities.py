"""The broker identity a deployed analytic connects with, created at deploy
and revoked at removal, behind one interface (`BrokerIdentities`).

`SharedAnalyticIdentity` is the identity analytics have until each gets its
own: every analytic connects as the registry's `analytic` user (its grants
are the ANALYTIC_FACING topics) with a client id of its own. A provider that
creates one broker user per analytic (Mosquitto's dynamic security plugin)
implements the same two calls, and the deployer takes it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.deployer.admission import GrantedTopic


@dataclass(frozen=True)
class BrokerIdentity:
    username: str
    password: str = field(repr=False)
    client_id: str


class BrokerIdentities(Protocol):
    async def create(self, analytic: str, topics: Sequence[GrantedTopic]) -> BrokerIdentity:
        """An identity that may use exactly `topics`; idempotent (a redeploy
        after a deployer restart gets the same analytic's identity again)."""
        ...

    async def revoke(self, analytic: str) -> None:
        """The analytic's identity no longer connects; idempotent."""
        ...


class SharedAnalyticIdentity:
    def __init__(self, username: str, password: str, gateway_id: str) -> None:
        self._username = username
        self._password = password
        self._gateway_id = gateway_id

    async def create(self, analytic: str, topics: Sequence[GrantedTopic]) -> BrokerIdentity:
        return BrokerIdentity(
            self._username, self._password, f"{self._username}-{self._gateway_id}-{analytic}"
        )

    async def revoke(self, analytic: str) -> None:
        return None
