"""An operator's short MQTT session for one CLI command."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from broker.generate import load_secrets
from schemas.topics import OPERATOR
from services.common.door import MqttDoor
from services.common.settings import StageSettings

T = TypeVar("T")
# Where `make demo` keeps the local broker's generated passwords.
LOCAL_SECRETS = Path("var/broker/secrets.env")


def operator_settings(secrets_file: Path | None = None) -> StageSettings:
    settings = StageSettings(mqtt_username=OPERATOR)
    if settings.mqtt_password.get_secret_value() or "EDGEGW_MQTT_PASSWORD" in os.environ:
        return settings
    path = secrets_file or LOCAL_SECRETS
    password = load_secrets(path).get(OPERATOR, "")
    return settings.model_copy(update={"mqtt_password": SecretStr(password)})


async def with_door(
    settings: StageSettings,
    root: str,
    prepare: Callable[[MqttDoor], None],
    body: Callable[[MqttDoor], Awaitable[T]],
    connect_timeout_s: float = 10.0,
    user: str = OPERATOR,
    side: str = "aux",
) -> T:
    """Connect as the operator (or as `user`'s side connection), run `body`,
    disconnect. `prepare` subscribes."""
    door = MqttDoor(settings, user, announce=False, root=root, side=side)
    prepare(door)
    async with asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(door.run())
        connected = tasks.create_task(door.connected.wait())
        refused = tasks.create_task(door.credentials_refused.wait())
        await asyncio.wait(
            {connected, refused}, timeout=connect_timeout_s, return_when="FIRST_COMPLETED"
        )
        connected.cancel()
        refused.cancel()
        if not door.connected.is_set():
            door.close()
            where = f"{settings.mqtt_host}:{settings.mqtt_port}"
            if door.credentials_refused.is_set():
                raise ConnectionError(f"the broker at {where} refused the {user}'s credentials")
            raise ConnectionError(f"no broker answered at {where} within {connect_timeout_s} s")
        try:
            return await body(door)
        finally:
            door.close()
            await runner
