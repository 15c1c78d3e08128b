"""The cheaper MQTT 5 properties behave exactly like paho's own: same bytes
out, same attributes back, same refusals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from services.common.library_seams import install_paho_speedups as install
from services.common.library_seams import stock_method
from tests.harness.probe import new_properties

REPLACED = ("__init__", "clear", "getIdentFromName", "getNameFromIdent")


def stock_class() -> type[Any]:
    """paho's Properties with its own methods back, whatever is installed."""
    stock = type("StockProperties", (Properties,), {})
    for name in REPLACED:
        setattr(stock, name, stock_method(name))
    return stock


text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
publish_properties = st.fixed_dictionaries(
    {},
    optional={
        "PayloadFormatIndicator": st.integers(0, 1),
        "MessageExpiryInterval": st.integers(0, 2**32 - 1),
        "ContentType": text,
        "ResponseTopic": text,
        "CorrelationData": st.binary(max_size=20),
        "TopicAlias": st.integers(1, 65535),
        "UserProperty": st.lists(st.tuples(text, text), min_size=1, max_size=4),
        "SubscriptionIdentifier": st.lists(st.integers(1, 268435455), min_size=1, max_size=3),
    },
)


def build(cls: type[Any], values: dict[str, Any]) -> Any:
    properties = cls(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(properties, name, value)
    return properties


def test_install_is_idempotent_and_replaces_the_methods() -> None:
    assert install() and install()
    for name in REPLACED:
        assert getattr(Properties, name) is not stock_method(name)


@given(publish_properties)
def test_pack_and_unpack_match_paho_byte_for_byte(values: dict[str, Any]) -> None:
    install()
    fast, stock = build(Properties, values), build(stock_class(), values)
    packed = stock.pack()
    assert fast.pack() == packed
    back_fast, used_fast = new_properties(PacketTypes.PUBLISH).unpack(packed)  # type: ignore[no-untyped-call]
    back_stock, used_stock = stock_class()(PacketTypes.PUBLISH).unpack(packed)
    assert used_fast == used_stock
    assert back_fast.json() == back_stock.json() and str(back_fast) == str(back_stock)
    assert back_fast.isEmpty() == back_stock.isEmpty() == (not values)


def test_clear_forgets_every_property_and_an_instance_can_be_reused() -> None:
    install()
    properties = build(Properties, {"ContentType": "a", "UserProperty": [("k", "v")]})
    properties.clear()
    assert properties.isEmpty() and properties.pack() == b"\x00"
    other = build(Properties, {"ResponseTopic": "r"}).pack()
    properties.unpack(other)
    assert properties.json() == {"ResponseTopic": "r"}


@pytest.mark.parametrize(
    ("packet_type", "name", "value"),
    [
        (PacketTypes.PUBLISH, "NoSuchProperty", 1),
        (PacketTypes.PUBLISH, "SessionExpiryInterval", 5),  # CONNECT's, not PUBLISH's
        (PacketTypes.CONNECT, "ReceiveMaximum", 0),  # out of range
        (PacketTypes.PUBLISH, "PayloadFormatIndicator", 2),
    ],
)
def test_the_same_values_are_refused(packet_type: int, name: str, value: object) -> None:
    install()
    for cls in (Properties, stock_class()):
        with pytest.raises(MQTTException):
            setattr(cls(packet_type), name, value)


def test_each_instance_still_has_the_tables_paho_reads() -> None:
    install()
    fast, stock = new_properties(PacketTypes.CONNECT), stock_class()(PacketTypes.CONNECT)
    for table in ("packetType", "types", "names", "properties"):
        assert getattr(fast, table) == getattr(stock, table)
