"""What a dead letter or a config answer says about a refused model: the
field at fault, also when a model-level validator refused it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from services.alert_forwarder.settings import AlertForwarderConfig
from services.bandwidth_allocator.settings import AllocatorConfig
from services.common.messages import describe_validation_error


def _error(model: type[BaseModel], values: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(values)
    return caught.value


def test_a_validator_naming_its_field_is_reported_at_that_field() -> None:
    error = _error(AlertForwarderConfig, {"rules": {"rules": [{"zone_match": "all"}]}})
    assert describe_validation_error(error).startswith("rules.rules.0.zone_match: 'all' needs")


def test_a_plain_model_validator_is_mapped_to_the_first_field_it_names() -> None:
    error = _error(AllocatorConfig, {"budget_floor_kbps": 500, "budget_ceiling_kbps": 100})
    assert describe_validation_error(error).startswith("payload: ")
    assert describe_validation_error(error, AllocatorConfig).startswith("budget_floor_kbps: ")
