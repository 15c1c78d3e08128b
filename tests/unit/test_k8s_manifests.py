"""deploy/k8s renders with `kubectl kustomize` and every object is valid
against the Kubernetes OpenAPI schema (offline): tools/k8s_validate.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tools.k8s_validate import K8S_DIR, render, validate_tree, with_example_secrets


def test_every_overlay_renders_and_every_object_is_valid() -> None:
    reports = validate_tree(K8S_DIR)
    assert [r.overlay for r in reports] == ["site-a", "site-b"]
    for report in reports:
        assert report.errors == [], report.overlay
        assert report.kinds["Namespace"] == 1 and report.kinds["StatefulSet"] == 1
        assert report.kinds["PersistentVolumeClaim"] == 2


def test_the_detector_scales_and_every_other_stage_runs_once(tmp_path: Path) -> None:
    copy = with_example_secrets(K8S_DIR, tmp_path)
    objects = [o for o in yaml.safe_load_all(render(copy / "overlays" / "site-a")) if o]
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert deployments["object-detector"]["spec"]["replicas"] == 2
    assert "object-tracker" in deployments
    for name, deployment in deployments.items():
        assert all(o["metadata"]["namespace"] == "edgegw-site-a" for o in objects[1:])
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [name]
        assert container["readinessProbe"]["exec"]["command"] == ["edgegw", "health", name]
        if name != "object-detector":
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_a_broken_field_fails_the_check(tmp_path: Path) -> None:
    broken = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, broken)
    broker = broken / "base" / "broker.yaml"
    text = broker.read_text()
    assert "containerPort: 1883" in text
    broker.write_text(text.replace("containerPort: 1883", "containerPrt: 1883"))
    stages = broken / "base" / "stages.yaml"
    stages.write_text(stages.read_text().replace('limits: {cpu: "2"', 'limitz: {cpu: "2"'))

    reports = validate_tree(broken)
    for report in reports:
        assert any(e.startswith("StatefulSet/broker: ") and "ports/0" in e for e in report.errors)
        assert any("object-detector" in e and "limits" in e for e in report.errors), report.errors
