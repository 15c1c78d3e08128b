"""Settings every stage shares, read from EDGEGW_* environment variables.

A settings model reads its fields from the environment when it is built:
`EDGEGW_<FIELD>` (any case), a list, dict, tuple or model field as JSON,
keyword arguments winning over the environment, and each secret from the
file its `<VARIABLE>_FILE` names. This is the part of pydantic-settings the
stages use, in one module: the package itself imports every provider it has
(AWS, Azure, GCP, CLI, YAML, TOML, dotenv) and with them argparse, email and
importlib.metadata, 3.9 MB of RSS in each of the stack's eleven processes
(README, "Memory").
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from schemas.topics import gateway_root

ENV_PREFIX = "EDGEGW_"
# `<VARIABLE>_FILE` names a file holding a secret setting's value.
SECRET_FILE_SUFFIX = "_FILE"
# Field types whose variable holds JSON (pydantic-settings' "complex" fields).
_JSON_ORIGINS = frozenset({list, dict, tuple, set, frozenset})
ConfigT = TypeVar("ConfigT", bound=BaseModel)


class SettingsError(ValueError):
    """A variable that cannot be read at all: JSON that does not parse, a
    secret file that cannot be read, a secret given twice."""


class SettingsConfigDict(ConfigDict, total=False):
    env_prefix: str  # the variables' prefix, e.g. "EDGEGW_"


# A stage's settings class that also extends its runtime config (a frozen,
# extra="forbid" Model) sets this again: pydantic merges the bases' configs
# left to right, so the config model's `extra="forbid"` would otherwise win.
# Defaults are validated like values from the environment.
STAGE_SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
)


def _holds_json(annotation: Any) -> bool:
    """A list, dict, tuple, set or model field (or an optional one): its
    variable holds JSON."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_holds_json(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in _JSON_ORIGINS:
        return True
    if not isinstance(annotation, type):
        return False
    is_model = issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    return is_model or issubclass(annotation, tuple(_JSON_ORIGINS))


def _secret_from_file(variable: str, environ: Mapping[str, str]) -> str | None:
    """Every secret (SecretStr) setting may instead come from a file named by
    `<its variable>_FILE`, e.g. EDGEGW_MQTT_PASSWORD_FILE=/run/secrets/mqtt_password
    or EDGEGW_CLOUD_MQTT_PASSWORD_FILE: swarm and Kubernetes hand secrets over as
    files, which, unlike the environment, `docker inspect` does not show. One
    trailing line break is not part of the value; setting both is an error."""
    path = environ.get(variable + SECRET_FILE_SUFFIX)
    if path is None:
        return None
    if variable in environ:
        raise SettingsError(f"{variable} and {variable}{SECRET_FILE_SUFFIX} are both set")
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{variable}{SECRET_FILE_SUFFIX}: {error}") from None
    return text.removesuffix("\n").removesuffix("\r")


def _from_variable(variable: str, field: FieldInfo, raw: str) -> Any:
    if not _holds_json(field.annotation):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise SettingsError(f"{variable} is not valid JSON: {error}") from None


def environment_values(
    model: type[BaseModel], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The fields of `model` that its variables set: `<prefix><FIELD>` in
    any case, a secret also from `<prefix><FIELD>_FILE`."""
    environ = os.environ if environ is None else environ
    prefix = str(model.model_config.get("env_prefix", ""))
    by_lower_name = {name.lower(): value for name, value in environ.items()}
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name}".upper()
        secret = _secret_from_file(variable, environ) if field.annotation is SecretStr else None
        raw = by_lower_name.get(variable.lower()) if secret is None else secret
        if raw is not None:
            found[name] = _from_variable(variable, field, raw)
    return found


class StageSettings(BaseModel):
    """Start-up settings extend the runtime config: a stage's settings class
    inherits its config model, so each knob field is defined once and read
    from `EDGEGW_<FIELD>`; `runtime_part()` is the config in force at start-up."""

    model_config = STAGE_SETTINGS_CONFIG

    def __init__(self, **values: Any) -> None:
        """The fields in `values`, the others from the environment."""
        super().__init__(**{**environment_values(type(self)), **values})

    mqtt_host: str = Field(default="localhost", min_length=1)
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = Field(
        default=None,
        min_length=1,
        description="the stage's broker identity; defaults to the stage name "
        "(`<stage>.<replica>` with EDGEGW_REPLICA); also its client id, bound to it by the broker",
    )
    mqtt_password: SecretStr = Field(
        default=SecretStr(""), description="or EDGEGW_MQTT_PASSWORD_FILE: a file holding it"
    )
    mqtt_tls_ca: str | None = Field(default=None, description="CA file: enables TLS")
    mqtt_tls_cert: str | None = Field(default=None, description="client certificate (PEM)")
    mqtt_tls_key: str | None = Field(default=None, description="client certificate's key (PEM)")
    topic_root: str = Field(default="edgegw", pattern=r"^[A-Za-z0-9_.-]+$")
    gateway_id: str = Field(default="gw1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    replica: int = Field(
        default=0,
        ge=0,
        le=64,
        description="k >= 1: run as the replica identity `<stage>.<k>` (broker/dynsec.py)",
    )
    instance: str = Field(
        default="0",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="tells apart replicas of one stage in their status messages; "
        "`hostname`: this host's name, for replicas started alike (compose --scale)",
    )
    keepalive_s: int = Field(default=30, ge=2, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _replica_is_its_own_instance(cls, data: object) -> object:
        # Two replicas must never tell their status apart by the default "0".
        if isinstance(data, dict) and data.get("replica") and "instance" not in data:
            return {**data, "instance": str(data["replica"])}
        return data

    @field_validator("instance", mode="before")
    @classmethod
    def _instance_from_hostname(cls, value: object) -> object:
        # Replicas of one compose service share their environment; their
        # container host names (ids) differ, so each gets its own client id.
        if value == "hostname":
            return re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:32] or "0"
        return value

    session_expiry_s: int = Field(
        default=3600, ge=0, description="how long the broker keeps a QoS 1 consumer's queue"
    )
    receive_maximum: int = Field(
        default=64, ge=1, le=65535, description="unacknowledged QoS 1 messages in flight to us"
    )
    max_queued_qos0: int = Field(
        default=256, ge=1, description="QoS 0 messages held before the oldest is dropped"
    )
    max_inflight: int = Field(default=100, ge=1, le=65535)
    operation_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_initial_s: float = Field(default=0.2, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)
    auth_retry_s: float = Field(default=30.0, gt=0, description="wait after a refused login")
    health_interval_s: float = Field(default=10.0, gt=0)
    max_unsent_events: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="events a producer keeps while the broker has not confirmed them",
    )
    shutdown_grace_s: float = Field(default=5.0, gt=0)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @property
    def root(self) -> str:
        return gateway_root(self.topic_root, self.gateway_id)

    def runtime_part(self, config: type[ConfigT]) -> ConfigT:
        """The `config` fields of these settings, as that model."""
        return config.model_validate(self.model_dump(include=set(config.model_fields)))

    def mqtt_identity(self, stage: str, *, side: str = "") -> str:
        """The username this stage logs in with: its own identity, or
        `<identity>.<side>` for a side connection (SIDE_CONNECTIONS,
        broker/dynsec.py)."""
        identity = self.mqtt_username or (f"{stage}.{self.replica}" if self.replica else stage)
        return f"{identity}.{side}" if side else identity

    def mqtt_client_id(self, stage: str, *, side: str = "") -> str:
        """The client id: the identity itself, which the gateway broker binds
        to it, so no other credential can take this stage's session over."""
        return self.mqtt_identity(stage, side=side)


SettingsT = TypeVar("SettingsT", bound=StageSettings)


def load_settings(model: type[SettingsT]) -> SettingsT:
    """Read settings from the environment, or exit 2 naming every bad field."""
    try:
        return model()
    except SettingsError as error:
        print(f"invalid setting: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValidationError as error:
        prefix = model.model_config.get("env_prefix", "")
        for issue in error.errors():
            field = ".".join(str(part) for part in issue["loc"])
            env_name = f"{prefix}{field}".upper()
            print(f"invalid setting {env_name}: {issue['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
