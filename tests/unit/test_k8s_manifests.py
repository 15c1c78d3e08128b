"""deploy/k8s renders with `kubectl kustomize` and every object is valid
against the Kubernetes OpenAPI schema (offline): tools/k8s_validate.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from broker import dynsec
from broker.generate import env_name
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


def test_the_broker_gets_the_dynamic_security_seed_and_every_identity_a_password(
    tmp_path: Path,
) -> None:
    copy = with_example_secrets(K8S_DIR, tmp_path)
    objects = [o for o in yaml.safe_load_all(render(copy / "overlays" / "site-a")) if o]
    broker = next(o for o in objects if o["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    container = broker["containers"][0]
    assert "envFrom" not in container and "env" not in container  # no passwords, only hashes
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["dynsec-seed"] == "/run/edgegw"  # compose/broker-entrypoint.sh's seed
    seed = next(v for v in broker["volumes"] if v["name"] == "dynsec-seed")["secret"]
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    assert seed["secretName"] in secrets
    assert "dynamic-security.json" in secrets[seed["secretName"]]["data"]
    # What `broker.generate compose-env` writes, so each stage's secretKeyRef resolves.
    wanted = {env_name(user) for user in dynsec.identities()}
    for site in ("site-a", "site-b"):
        example = K8S_DIR / "overlays" / site / "secrets" / "passwords.env.example"
        keys = {line.split("=")[0] for line in example.read_text().splitlines() if "=" in line}
        assert keys == wanted, site
    referenced = {
        ref["key"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if (ref := e.get("valueFrom", {}).get("secretKeyRef", {}))
        .get("name", "")
        .startswith("broker-passwords-")
    }
    assert "EDGEGW_PASSWORD_OBJECT_TRACKER" in referenced and referenced <= wanted
