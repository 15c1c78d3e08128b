"""`edgegw health <stage>`: is this stage up and healthy, by what it last
said on the broker? Exit 0 or 1, for a container's liveness and readiness
probes (deploy/k8s) as much as for a person.

It connects as the stage's own user (the password of its environment, as the
stage itself does; or of the `--secrets` file of `make demo`) and reads the
retained `status/<stage>` and `health/<stage>`. Healthy means: `online`, a
health report no older than `--max-age-s` that says the stage is connected,
with state `ok`, or `degraded` unless `--fail-degraded` (a degraded stage
still works: a full spool disk, an unreachable cloud).

Replicas of one stage share these topics, so the answer is about the stage,
not the replica that asks; a replica whose process fails exits by itself.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from broker.generate import load_secrets
from schemas.service import ONLINE, Health
from schemas.topics import HEALTH, STAGES, STATUS
from services.cli.session import LOCAL_SECRETS, with_door
from services.common.door import MqttDoor, Received
from services.common.settings import SECRET_FILE_SUFFIX, StageSettings

HEALTHY, UNHEALTHY, UNREACHABLE = 0, 1, 3


@dataclass(frozen=True)
class HealthCheck:
    max_age_s: float
    fail_degraded: bool = False


def judge(status: str | None, health: Health | None, check: HealthCheck, now: float) -> str:
    """Empty when healthy, else the reason it is not."""
    if status != ONLINE:
        return f"status is {status or 'unknown'}"
    if health is None:
        return "no health report"
    age = now - health.ts
    if age > check.max_age_s:
        return f"last health report is {age:.0f} s old (limit {check.max_age_s:g} s)"
    if not health.connected:
        return "reports itself disconnected"
    if health.state == "degraded" and check.fail_degraded:
        return f"degraded: {health.detail}"
    return ""


def stage_settings(stage: str, secrets_file: Path | None) -> StageSettings:
    """The stage's own login: its environment, else the demo's secrets file."""
    settings = StageSettings()
    if settings.mqtt_username is None:
        # A replica (EDGEGW_REPLICA=k) asks as its own identity, `<stage>.<k>`.
        settings = settings.model_copy(update={"mqtt_username": settings.mqtt_identity(stage)})
    given = "EDGEGW_MQTT_PASSWORD"
    if given in os.environ or given + SECRET_FILE_SUFFIX in os.environ:
        return settings
    password = load_secrets(secrets_file or LOCAL_SECRETS).get(settings.mqtt_username or stage)
    return settings.model_copy(update={"mqtt_password": SecretStr(password or "")})


async def read_health(
    settings: StageSettings, stage: str, wait_s: float
) -> tuple[str | None, Health | None]:
    """The retained status and health of `stage` (None for what did not come)."""
    status: list[str] = []
    health: list[Health] = []
    both = asyncio.Event()

    def seen() -> None:
        if status and health:
            both.set()

    async def on_status(message: Received[bytes]) -> None:
        status.append(message.raw.decode(errors="replace"))
        seen()

    async def on_health(message: Received[Health | None]) -> None:
        if message.payload is not None:
            health.append(message.payload)
            seen()

    def prepare(door: MqttDoor) -> None:
        door.subscribe(STATUS, on_status, stage=stage)
        door.subscribe(HEALTH, on_health, stage=stage)

    async def body(door: MqttDoor) -> None:
        try:
            async with asyncio.timeout(wait_s):
                await both.wait()
        except TimeoutError:
            pass  # a missing retained message is an answer too

    # As the stage's `health` side connection: the stage holds its own bound
    # client id, and the alert-forwarder's receipt reader the `aux` one.
    await with_door(
        settings, settings.root, prepare, body, connect_timeout_s=wait_s, user=stage, side="health"
    )
    return (status[-1] if status else None), (health[-1] if health else None)


def check_health(
    stage: str,
    secrets_file: Path | None,
    *,
    max_age_s: float | None,
    wait_s: float,
    fail_degraded: bool,
    broker_down_ok: bool,
) -> int:
    if stage not in STAGES:
        print(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        return UNHEALTHY
    settings = stage_settings(stage, secrets_file)
    # Three missed reports: a stage reports every health_interval_s.
    check = HealthCheck(max_age_s or 3 * settings.health_interval_s, fail_degraded)
    status: str | None = None
    health: Health | None = None
    unreachable = ""
    try:
        status, health = asyncio.run(read_health(settings, stage, wait_s))
    except* ConnectionError as group:
        unreachable = str(group.exceptions[0])
    if unreachable:
        print(f"{stage}: {unreachable}")
        # A liveness probe must not restart a stage because the broker is away.
        return HEALTHY if broker_down_ok else UNREACHABLE
    reason = judge(status, health, check, time.time())
    state = health.state if health else "-"
    print(
        f"{stage}: {'healthy' if not reason else 'UNHEALTHY'} ({status or '-'}, {state})"
        + (f": {reason}" if reason else "")
    )
    return UNHEALTHY if reason else HEALTHY
