"""The broker identity a deployed analytic connects with, created at deploy
and revoked at removal, behind one interface (`BrokerIdentities`).

`SharedAnalyticIdentity` is the identity analytics have until each gets its
own: every analytic connects as the registry's `analytic` user (its grants
are the ANALYTIC_FACING topics) with a client id of its own. A provider that
creates one broker user per analytic (Mosquitto's dynamic security plugin)
implements the same two calls, and the deployer takes it unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.common.dynsec_control import DynsecControl, DynsecRefused
from services.deployer.admission import GrantedTopic


@dataclass(frozen=True)
class BrokerIdentity:
    username: str
    password: str = field(repr=False)
    client_id: str


class BrokerIdentities(Protocol):
    async def create(
        self, analytic: str, topics: Sequence[GrantedTopic], stage: str | None = None
    ) -> BrokerIdentity:
        """An identity that may use exactly `topics`, and what the registry
        grants `stage` when the analytic runs an edgegw stage; idempotent (a
        redeploy after a deployer restart gets the same analytic's identity
        again)."""
        ...

    async def revoke(self, analytic: str) -> None:
        """The analytic's identity no longer connects; idempotent."""
        ...


class SharedAnalyticIdentity:
    def __init__(self, username: str, password: str, gateway_id: str) -> None:
        self._username = username
        self._password = password
        self._gateway_id = gateway_id

    async def create(
        self, analytic: str, topics: Sequence[GrantedTopic], stage: str | None = None
    ) -> BrokerIdentity:
        if stage is not None:
            raise IdentityRefused(
                f"stage {stage}: its role needs an identity per analytic (broker_identities=dynsec)"
            )
        return BrokerIdentity(
            self._username, self._password, f"{self._username}-{self._gateway_id}-{analytic}"
        )

    async def revoke(self, analytic: str) -> None:
        return None


class IdentityRefused(Exception):
    """The broker would not create the analytic's identity."""


class DynsecIdentities:
    def __init__(self, control: DynsecControl, gateway_id: str, secret: str) -> None:
        self._control = control
        self._gateway_id = gateway_id
        self._secret = secret.encode()

    def username(self, analytic: str) -> str:
        return f"analytic.{self._gateway_id}.{analytic}"

    def password(self, username: str) -> str:
        # Derived, not stored: the same analytic gets the same password after a
        # deployer restart, so a container it finds again still connects.
        digest = hmac.new(self._secret, username.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def create(
        self, analytic: str, topics: Sequence[GrantedTopic], stage: str | None = None
    ) -> BrokerIdentity:
        username = self.username(analytic)
        password = self.password(username)
        commands = create_commands(username, password, topics, stage)
        try:
            responses = await self._control.send(commands)
        except DynsecRefused as error:
            raise IdentityRefused(str(error)) from error
        refused = [r for r in responses[2:] if "error" in r]
        if refused or len(responses) != len(commands):
            raise IdentityRefused(f"dynamic security refused: {refused or responses}")
        return BrokerIdentity(username, password, username)

    async def revoke(self, analytic: str) -> None:
        username = self.username(analytic)
        try:
            await self._control.send(
                [
                    {"command": "deleteClient", "username": username},
                    {"command": "deleteRole", "rolename": username},
                ]
            )
        except DynsecRefused as error:
            raise IdentityRefused(str(error)) from error


def create_commands(
    username: str, password: str, topics: Sequence[GrantedTopic], stage: str | None = None
) -> list[dict[str, Any]]:
    """Dynamic security commands that (re)make `username`: bound to that client
    id, with a role of its own granting exactly `topics`, and the registry's
    role of `stage` (broker/dynsec.py names each role after its stage)."""
    roles = [{"rolename": username}] + ([{"rolename": stage}] if stage is not None else [])
    acls: list[dict[str, Any]] = []
    for grant in topics:
        if grant.direction == "publish":
            acls.append(_acl("publishClientSend", grant.topic))
        else:
            acls.append(_acl("subscribePattern", grant.topic))
            acls.append(_acl("publishClientReceive", grant.topic))
    return [
        {"command": "deleteClient", "username": username},  # a leftover: made anew
        {"command": "deleteRole", "rolename": username},
        {"command": "createRole", "rolename": username, "acls": acls},
        {
            "command": "createClient",
            "username": username,
            "password": password,
            "clientid": username,
            "roles": roles,
        },
    ]


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}
