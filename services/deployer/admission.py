"""Whether a deploy request may run here, and with what: the image reference
resolved in the gateway's registry, the limits checked against the gateway's
ceilings, the declared topics checked against the registry. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.deploy import DeploySpec
from schemas.topic_spec import TopicError
from schemas.topics import ANALYTIC_FACING, ANALYTIC_STAGES
from services.deployer.settings import Ceilings

# Container labels: how the deployer finds its own containers again.
LABEL_MANAGED = "edgegw.managed-by"
LABEL_GATEWAY = "edgegw.gateway"
LABEL_ANALYTIC = "edgegw.analytic"
LABEL_REQUEST = "edgegw.request"
MANAGER = "deployer"


class Refused(ValueError):
    """A request the gateway will not run; the message names the field."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What the registry's manifest endpoint takes: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def full(self) -> str:
        return (
            f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag or 'latest'}"
        )


def parse_image(image: str, registry: str) -> ImageRef:
    """`image` (already checked against the reference grammar) in `registry`:
    a reference without a host is looked up there, one naming another host
    is refused (analytics come from the gateway's registry only)."""
    rest, _, digest = image.partition("@")
    first, slash, after = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if first != registry:
            raise Refused(f"image: registry {first} is not this gateway's ({registry})")
        rest = after
    repository, colon, tag = rest.rpartition(":")
    if not colon:
        repository, tag = rest, ""
    return ImageRef(registry, repository, tag or None, digest or None)


def limit_refusals(spec: DeploySpec, ceilings: Ceilings) -> list[str]:
    """Every field of `spec` above the gateway's ceilings, named."""
    found = []
    limits = spec.limits
    if limits.cpus > ceilings.max_cpus:
        found.append(f"limits.cpus: {limits.cpus} above this gateway's {ceilings.max_cpus}")
    if limits.memory_mb > ceilings.max_memory_mb:
        found.append(
            f"limits.memory_mb: {limits.memory_mb} above this gateway's {ceilings.max_memory_mb}"
        )
    if limits.pids > ceilings.max_pids:
        found.append(f"limits.pids: {limits.pids} above this gateway's {ceilings.max_pids}")
    if ceilings.max_lifetime_s is not None and (
        spec.lifetime_s is None or spec.lifetime_s > ceilings.max_lifetime_s
    ):
        found.append(
            f"lifetime_s: {spec.lifetime_s} above this gateway's {ceilings.max_lifetime_s}"
        )
    if spec.stage is not None and spec.stage not in ANALYTIC_STAGES:
        found.append(f"stage: {spec.stage!r} is not one of {', '.join(ANALYTIC_STAGES)}")
    env_bytes = sum(len(name) + len(value) + 2 for name, value in spec.environment.items())
    if env_bytes > ceilings.max_environment_bytes:
        found.append(
            f"environment: {env_bytes} bytes above this gateway's {ceilings.max_environment_bytes}"
        )
    return found


@dataclass(frozen=True)
class GrantedTopic:
    """A concrete topic (or filter) an analytic may use, and how."""

    spec: str
    direction: str
    topic: str

    @property
    def env_name(self) -> str:
        return f"EDGEGW_TOPIC_{self.spec.upper()}"


def granted_topics(spec: DeploySpec, root: str) -> list[GrantedTopic]:
    """The declared topics as concrete topics under `root`. A template's
    `analytic` parameter is the analytic's own name (it may not speak for
    another); other parameters must be given."""
    granted = []
    for index, declared in enumerate(spec.topics):
        field = f"topics.{index}"
        facing = ANALYTIC_FACING.get(declared.spec)
        if facing is None:
            allowed = ", ".join(sorted(ANALYTIC_FACING))
            raise Refused(f"{field}.spec: {declared.spec!r} is not one of {allowed}")
        topic_spec, direction = facing
        if declared.direction != direction:
            raise Refused(f"{field}.direction: {declared.spec} is {direction}-only for analytics")
        params = dict(declared.params)
        if "analytic" in topic_spec.params and (
            params.setdefault("analytic", spec.analytic) != spec.analytic
        ):
            raise Refused(f"{field}.params.analytic: must be {spec.analytic!r}")
        try:
            topic = topic_spec.topic(root, **params)
        except TopicError as error:
            raise Refused(f"{field}.params: {error}") from None
        granted.append(GrantedTopic(declared.spec, direction, topic))
    names = [grant.spec for grant in granted]
    if len(set(names)) != len(names):
        raise Refused("topics: a template is declared twice")
    return granted
