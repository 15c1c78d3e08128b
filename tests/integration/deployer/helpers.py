"""Requests and retained states of the deployer, as a test sees them."""

from __future__ import annotations

from typing import Any

from schemas.deploy import AnalyticState, DeployRequest, DeploySpec, LifecycleRequest
from tests.harness.probe import MakeProbe, Probe, Seen

OPERATOR_SOURCE = "operator"


def watch_states(probe: MakeProbe, root: str) -> Probe:
    """An operator's client that sees every analytic's retained state."""
    observer = probe("operator")
    observer.subscribe(f"{root}/deploy/state/#")
    return observer


def deploy(observer: Probe, root: str, **spec: Any) -> int | None:
    spec.setdefault("upload_saving_kbps", 100)
    request = DeployRequest(source=OPERATOR_SOURCE, request=DeploySpec.model_validate(spec))
    return observer.publish(f"{root}/deploy/request", request.to_bytes())


def lifecycle(observer: Probe, root: str, action: str, analytic: str) -> int | None:
    request = LifecycleRequest.model_validate(
        {"source": OPERATOR_SOURCE, "action": action, "analytic": analytic}
    )
    return observer.publish(f"{root}/deploy/request", request.to_bytes())


def states(observer: Probe, root: str, analytic: str) -> list[AnalyticState]:
    topic = f"{root}/deploy/state/{analytic}"
    return [
        AnalyticState.from_bytes(m.payload)
        for m in observer.received(lambda m: m.topic == topic and bool(m.payload))
    ]


def wait_state(
    observer: Probe, root: str, analytic: str, state: str, timeout_s: float = 30.0
) -> AnalyticState:
    topic = f"{root}/deploy/state/{analytic}"

    def reached(m: Seen) -> bool:
        return (
            m.topic == topic
            and bool(m.payload)
            and AnalyticState.from_bytes(m.payload).state == state
        )

    try:
        found = observer.wait_for(reached, timeout_s=timeout_s)
    except AssertionError:
        seen = [(s.state, s.reason) for s in states(observer, root, analytic)]
        raise AssertionError(f"{analytic} never {state} in {timeout_s} s; states: {seen}") from None
    return AnalyticState.from_bytes(found[-1].payload)


def wait_online(observer: Probe, root: str) -> None:
    """The deployer is subscribed (it says `online` after subscribing)."""
    observer.subscribe(f"{root}/status/deployer")
    observer.wait_for(
        lambda m: m.topic == f"{root}/status/deployer" and m.payload == b"online", timeout_s=20
    )
    observer.clear()


OUTPUT_TOPIC = [{"spec": "analytic_output", "direction": "publish"}]
