"""The dynamic security plugin's JSON config (Mosquitto 2.0.11,
plugins/dynamic-security): identities, their roles and password hashes.

A client id belongs to one identity: every stage identity is a dynsec client
whose `clientid` is its username, so the broker refuses any other credential
that presents it (auth.c checks the bound id before the password, and a
refused CONNECT never reaches the session takeover). The operator stays
unbound: it is the administrator's credential, used by the CLI with many short
connections under random ids.

Identities of a stage (all with the stage's role):
- `<stage>`: the stage itself (`EDGEGW_REPLICA` unset);
- `<stage>.<k>`, k = 1..REPLICAS[stage]: further replicas (`EDGEGW_REPLICA=k`);
- `<identity>.<side>`, side in SIDE_CONNECTIONS: a side connection with its
  own bound client id, same password (`aux`: the alert-forwarder's receipt
  reader; `health`: the `edgegw health` probe of a container).

Besides them: the operator, `dynsec-admin` (the control topic only) and
`broker-probe`, the broker container's healthcheck (compose), which may
subscribe to one `$SYS` topic by its exact name and do nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any, Final

from schemas.topics import OBJECT_DETECTOR, OPERATOR, SIDE_CONNECTIONS, STAGES

# Replica identities provisioned per replicable stage (beyond the stage's own).
REPLICAS: Final[Mapping[str, int]] = {OBJECT_DETECTOR: 4}
# Every stage may open side connections, each with its own bound client id:
# the alert-forwarder's receipt reader (services/alert_forwarder/confirmation.py)
# and `edgegw health <stage>`, a container's probe, which logs in as the stage
# while the stage itself holds the stage's client id.
AUXILIARY: Final = frozenset(STAGES)
SIDE_SUFFIXES: Final = tuple(f".{side}" for side in SIDE_CONNECTIONS)

ADMIN: Final = "dynsec-admin"
ADMIN_ROLE: Final = "dynsec-admin"
CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
# The broker's own healthcheck: `mosquitto_sub -t '$SYS/broker/uptime' -C 1`
# inside the broker container (compose/docker-compose.yml). Mosquitto keeps
# that topic retained and refreshes it every sys_interval (10 s).
PROBE: Final = "broker-probe"
PROBE_ROLE: Final = "broker-probe"
PROBE_TOPIC: Final = "$SYS/broker/uptime"
# Same as Mosquitto's own (password_mosq.h): SALT_LEN 12, PW_DEFAULT_ITERATIONS 101.
SALT_BYTES: Final = 12
ITERATIONS: Final = 101

Grants = Mapping[str, frozenset[str]]  # filter -> {"publish", "subscribe"}


def stage_identities(stage: str) -> list[str]:
    """Every identity provisioned for `stage`, its own first."""
    return [stage, *(f"{stage}.{k}" for k in range(1, REPLICAS.get(stage, 0) + 1))]


def identities() -> dict[str, str]:
    """Every static identity (username) with the role it gets; their passwords
    are one secret each, an auxiliary identity sharing its owner's."""
    found = {identity: stage for stage in STAGES for identity in stage_identities(stage)}
    found[OPERATOR] = OPERATOR
    found[ADMIN] = ADMIN_ROLE
    found[PROBE] = PROBE_ROLE
    return found


def password_owner(username: str) -> str:
    """Whose secret a username logs in with (a side identity: its owner's)."""
    for suffix in SIDE_SUFFIXES:
        if username.endswith(suffix):
            return username.removesuffix(suffix)
    return username


def side_identities(username: str, role_name: str) -> list[str]:
    """`username` and, for a stage's role, its side connections' identities."""
    sides = SIDE_SUFFIXES if role_name in AUXILIARY else ()
    return [username, *(username + suffix for suffix in sides)]


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """`password`, `salt` (base64) and `iterations` as dynsec stores them
    (PBKDF2-HMAC-SHA512, 64-byte hash: auth.c dynsec_auth__pw_hash)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": ITERATIONS,
    }


def role(name: str, grants: Grants) -> dict[str, Any]:
    """A role with `grants`: publish -> publishClientSend; subscribe ->
    subscribePattern (also as any `$share/<group>/` subscription: a shared
    subscription gets a subset of the same messages) and publishClientReceive,
    the check Mosquitto makes on every delivery, as the ACL file's `read` did."""
    acls: list[dict[str, Any]] = []
    for topic in sorted(grants):
        kinds = grants[topic]
        if "publish" in kinds:
            acls.append(_acl("publishClientSend", topic))
        if "subscribe" in kinds:
            acls.append(_acl("subscribePattern", topic))
            acls.append(_acl("subscribePattern", f"$share/+/{topic}"))
            acls.append(_acl("publishClientReceive", topic))
    if name == OPERATOR:
        # Any filter (`mosquitto_sub -t 'edgegw/+/alert/#'`): what it receives
        # is still only what publishClientReceive grants.
        acls.append(_acl("subscribePattern", "#"))
    return {"rolename": name, "acls": acls}


def admin_role() -> dict[str, Any]:
    """Only the dynsec control topic: create, change and revoke identities."""
    return {
        "rolename": ADMIN_ROLE,
        "acls": [
            _acl("publishClientSend", CONTROL_TOPIC),
            _acl("subscribePattern", f"{CONTROL_TOPIC}/response"),
            _acl("publishClientReceive", f"{CONTROL_TOPIC}/response"),
        ],
    }


def probe_role() -> dict[str, Any]:
    """Subscribe to PROBE_TOPIC by its literal name (no wildcard filter) and
    receive it: no publishing, no other topic."""
    return {
        "rolename": PROBE_ROLE,
        "acls": [
            _acl("subscribeLiteral", PROBE_TOPIC),
            _acl("publishClientReceive", PROBE_TOPIC),
        ],
    }


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def client(username: str, role_name: str, password: str, *, bound: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"username": username}
    if bound:
        entry["clientid"] = username
    entry["roles"] = [{"rolename": role_name}]
    return {**entry, **hash_password(password)}


def config(grants_of: Mapping[str, Grants], passwords: Mapping[str, str]) -> dict[str, Any]:
    """The whole plugin config: default access deny (unsubscribing stays allowed),
    a role per registry user, a client per identity (`identities()`), the
    stages' bound to their client id."""
    clients = []
    for username, role_name in identities().items():
        password = passwords[username]
        clients.append(client(username, role_name, password, bound=username != OPERATOR))
        clients += [
            client(side, role_name, password) for side in side_identities(username, role_name)[1:]
        ]
    return {
        "defaultACLAccess": [
            {"acltype": "publishClientSend", "allow": False},
            {"acltype": "publishClientReceive", "allow": False},
            {"acltype": "subscribe", "allow": False},
            {"acltype": "unsubscribe", "allow": True},
        ],
        "clients": clients,
        "groups": [],
        "roles": [role(name, grants) for name, grants in grants_of.items()]
        + [admin_role(), probe_role()],
    }


def create_client_commands(username: str, password: str, role_name: str) -> dict[str, Any]:
    """`$CONTROL/dynamic-security/v1` commands that add a bound identity with
    `role_name` at run time (the harness does; the deployer will)."""
    names = side_identities(username, role_name)
    return {
        "commands": [
            {
                "command": "createClient",
                "username": name,
                "password": password,
                "clientid": name,
                "roles": [{"rolename": role_name}],
            }
            for name in names
        ]
    }


def delete_client_commands(username: str, role_name: str) -> dict[str, Any]:
    """Commands that revoke an identity made by `create_client_commands`; the
    plugin also disconnects it (clients.c: mosquitto_kick_client_by_username)."""
    names = side_identities(username, role_name)
    return {"commands": [{"command": "deleteClient", "username": name} for name in names]}
