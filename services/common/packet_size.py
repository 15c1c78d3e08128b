"""How large a PUBLISH packet is on the wire, and the refusal of one the
broker would not take.

A broker drops the connection of a client that sends a packet over its
Maximum Packet Size (MQTT 5, 3.2.2.3.6): no reason code, every message in
flight with it. So the door measures a message before it leaves, against the
topic's `max_bytes` and the size the broker stated in its CONNACK, and
refuses it locally (`TooLarge`) instead.
"""

from __future__ import annotations

from typing import Any

from paho.mqtt.properties import Properties

from schemas.topic_spec import TopicSpec
from services.common.messages import PublishFailed
from services.common.stage_client import publish_properties


class TooLarge(PublishFailed):
    """The message is larger than its topic or the broker allows; not sent."""

    def __init__(self, topic: str, size: int, limit: int, what: str) -> None:
        super().__init__(f"{topic}: {size} bytes over the {limit}-byte limit of {what}")
        self.topic = topic
        self.size = size
        self.limit = limit


def _varint_bytes(value: int) -> int:
    """Bytes of an MQTT variable byte integer."""
    count = 1
    while value >= 128:
        value //= 128
        count += 1
    return count


def publish_packet_bytes(
    topic: str, payload_bytes: int, qos: int, properties: Properties | None
) -> int:
    """The size of the MQTT 5 PUBLISH packet carrying this message."""
    packed = properties.pack() if properties is not None else b"\x00"  # type: ignore[no-untyped-call]
    variable_header = 2 + len(topic.encode()) + (2 if qos > 0 else 0) + len(packed)
    remaining = variable_header + payload_bytes
    return 1 + _varint_bytes(remaining) + remaining


def max_payload_bytes(
    topic: str, qos: int, properties: Properties | None, max_packet_bytes: int
) -> int:
    """The largest payload whose PUBLISH packet fits `max_packet_bytes`."""
    payload = max_packet_bytes - publish_packet_bytes(topic, 0, qos, properties)
    # The remaining length grows from 1 to up to 4 bytes with the payload.
    while payload > 0 and publish_packet_bytes(topic, payload, qos, properties) > max_packet_bytes:
        payload -= 1
    return max(0, payload)


def largest_payload(
    spec: TopicSpec[Any],
    topic: str,
    user_properties: dict[str, str] | None,
    broker_max_packet: int | None,
) -> int:
    """The largest payload of `spec` on `topic` that neither the topic's
    `max_bytes` nor the broker's packet limit (None: unknown yet) refuses."""
    if broker_max_packet is None:
        return spec.max_bytes
    properties = publish_properties(user_properties)
    return min(spec.max_bytes, max_payload_bytes(topic, spec.qos, properties, broker_max_packet))


def oversize(
    spec: TopicSpec[Any],
    topic: str,
    payload_bytes: int,
    user_properties: dict[str, str] | None,
    broker_max_packet: int | None,
) -> TooLarge | None:
    """Why this message must not be sent, or None when it fits."""
    if payload_bytes > spec.max_bytes:
        return TooLarge(topic, payload_bytes, spec.max_bytes, f"topic {spec.name}")
    if broker_max_packet is None:
        return None
    properties = publish_properties(user_properties)
    size = publish_packet_bytes(topic, payload_bytes, spec.qos, properties)
    if size > broker_max_packet:
        return TooLarge(topic, size, broker_max_packet, "the broker's maximum packet size")
    return None
