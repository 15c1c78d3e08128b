"""Commands to Mosquitto's dynamic security plugin, as its administrator:
one short connection per batch, publishing on `$CONTROL/dynamic-security/v1`
and reading the plugin's answer on its `/response` topic. Used by the
deployer to create and revoke the broker identity of each deployed analytic
without restarting the broker or disconnecting anyone else.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiomqtt
import orjson

from services.common.settings import StageSettings

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"


class DynsecRefused(Exception):
    """The plugin answered a command with an error, or did not answer."""


class DynsecControl:
    def __init__(
        self, settings: StageSettings, username: str, password: str, timeout_s: float = 10.0
    ) -> None:
        self._settings = settings
        self._username = username
        self._password = password
        self._timeout_s = timeout_s

    async def send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `commands` in one message; the plugin's responses, in order
        (an entry with "error" is a command it refused)."""
        settings = self._settings
        tls_context = None
        if settings.mqtt_tls_ca:
            tls_context = ssl.create_default_context(cafile=settings.mqtt_tls_ca)
            if settings.mqtt_tls_cert:
                tls_context.load_cert_chain(settings.mqtt_tls_cert, settings.mqtt_tls_key)
        client = aiomqtt.Client(
            settings.mqtt_host,
            settings.mqtt_port,
            username=self._username,
            password=self._password,
            identifier=self._username,  # the admin identity may be bound to its name
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=self._timeout_s,
            tls_context=tls_context,
        )
        try:
            async with asyncio.timeout(self._timeout_s), client:
                await client.subscribe(f"{CONTROL_TOPIC}/response", qos=1)
                await client.publish(CONTROL_TOPIC, orjson.dumps({"commands": commands}), qos=1)
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        answer = orjson.loads(payload)
                        responses = answer.get("responses") if isinstance(answer, dict) else None
                        if isinstance(responses, list):
                            return [dict(item) for item in responses]
        except TimeoutError as error:
            raise DynsecRefused(f"no answer from the broker in {self._timeout_s} s") from error
        except (aiomqtt.MqttError, orjson.JSONDecodeError) as error:
            raise DynsecRefused(f"dynamic security: {error}") from error
        raise DynsecRefused("the broker closed the control connection without an answer")
