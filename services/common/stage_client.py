"""The aiomqtt client of one stage, built from its settings for each connect
of the door's reconnect loop, and which connect refusals mean bad credentials.

Apart from the door so that every connect option sits in one place: MQTT 5,
the stage's credentials, session expiry and Receive Maximum, the retained
`offline` last will, TLS, the bounded incoming queue and manual acks.
"""

from __future__ import annotations

import ssl

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from schemas.service import OFFLINE
from services.common.library_seams import (
    DrainingClient,
    bounded_queue_type,
    enable_manual_acks,
    install_paho_speedups,
)
from services.common.settings import StageSettings
from services.common.stage_metrics import StageMetrics

# CONNACK reason codes that mean "your credentials are refused": retrying
# quickly cannot help, so the door reports them and waits `auth_retry_s`.
_AUTH_REFUSED = frozenset({4, 5, 134, 135})


def credentials_refused(error: BaseException) -> bool:
    """Whether a connect failed because the broker refused our credentials."""
    code = getattr(error, "rc", None)
    return getattr(code, "value", code) in _AUTH_REFUSED


# DISCONNECT reason code 142: another connection presented our client id.
SESSION_TAKEN_OVER = 142


def session_taken_over(error: BaseException | None) -> bool:
    """Whether a lost connection (or its cause) was the broker's "Session taken over"."""
    while error is not None:
        code = getattr(error, "rc", None)
        if getattr(code, "value", code) == SESSION_TAKEN_OVER:
            return True
        error = error.__cause__
    return False


def build_client(
    settings: StageSettings,
    *,
    user: str,
    client_id: str,
    persistent: bool,
    will_topic: str | None,
    metrics: StageMetrics,
) -> aiomqtt.Client:
    """A client for one connect; `persistent` keeps the session (QoS 1 consumers)."""
    install_paho_speedups()  # once per process; every later call returns at once
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = settings.session_expiry_s if persistent else 0
    properties.ReceiveMaximum = settings.receive_maximum
    will = None
    if will_topic is not None:
        will = aiomqtt.Will(
            will_topic,
            OFFLINE,
            qos=1,
            retain=True,
            properties=publish_properties(status_properties(settings), PacketTypes.WILLMESSAGE),
        )
    tls_context = None
    if settings.mqtt_tls_ca:
        # Certificate and host name are always checked: there is no switch to turn it off.
        tls_context = ssl.create_default_context(cafile=settings.mqtt_tls_ca)
        if settings.mqtt_tls_cert:
            tls_context.load_cert_chain(settings.mqtt_tls_cert, settings.mqtt_tls_key)
    client = DrainingClient(
        settings.mqtt_host,
        settings.mqtt_port,
        username=user,  # the identity the door chose (settings.mqtt_identity)
        password=settings.mqtt_password.get_secret_value(),
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        clean_start=not persistent,
        keepalive=settings.keepalive_s,
        timeout=settings.operation_timeout_s,
        queue_type=bounded_queue_type(settings.max_queued_qos0, metrics),
        max_inflight_messages=settings.max_inflight,
        properties=properties,
        tls_context=tls_context,
    )
    # The door acknowledges QoS 1 itself, after handling (see its docstring).
    enable_manual_acks(client)
    return client


def user_properties_of(properties: Properties | None) -> dict[str, str]:
    """A received message's MQTT 5 user properties as a dict."""
    pairs = getattr(properties, "UserProperty", None) or []
    return {str(key): str(value) for key, value in pairs}


def status_properties(settings: StageSettings) -> dict[str, str]:
    """User properties of a stage's `online`/`offline` (its will too): which
    instance said it, so replicas tell each other's word from their own."""
    return {"instance": settings.instance}


def publish_properties(
    user_properties: dict[str, str] | None, packet_type: int = PacketTypes.PUBLISH
) -> Properties | None:
    """PUBLISH (or will) properties carrying `user_properties`; None when there are none."""
    if not user_properties:
        return None
    properties = Properties(packet_type)  # type: ignore[no-untyped-call]
    properties.UserProperty = list(user_properties.items())
    return properties
