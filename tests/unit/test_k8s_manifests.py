"""deploy/k8s renders with `kubectl kustomize` and every object is valid
against the Kubernetes OpenAPI schema (offline): tools/k8s_validate.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from broker import dynsec
from broker.generate import env_name
from schemas.topics import OBJECT_DETECTOR
from tools.k8s_validate import K8S_DIR, render, validate_tree, with_example_secrets


def test_every_overlay_renders_and_every_object_is_valid() -> None:
    reports = validate_tree(K8S_DIR)
    assert [r.overlay for r in reports] == ["site-a", "site-b"]
    for report in reports:
        assert report.errors == [], report.overlay
        assert (
            report.kinds["Namespace"] == 1 and report.kinds["StatefulSet"] == 2
        )  # broker, detector
        assert report.kinds["PersistentVolumeClaim"] == 2


def test_the_detector_scales_and_every_other_stage_runs_once(tmp_path: Path) -> None:
    copy = with_example_secrets(K8S_DIR, tmp_path)
    objects = [o for o in yaml.safe_load_all(render(copy / "overlays" / "site-a")) if o]
    assert all(o["metadata"]["namespace"] == "edgegw-site-a" for o in objects[1:])
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    sets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    assert "object-detector" not in deployments and "object-tracker" in deployments
    for name, deployment in [*deployments.items(), ("object-detector", sets["object-detector"])]:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [name]
        assert container["readinessProbe"]["exec"]["command"] == ["edgegw", "health", name]
        if name != "object-detector":
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_each_detector_replica_logs_in_as_its_own_identity(tmp_path: Path) -> None:
    """Replica k (its StatefulSet ordinal, from 1) reads its ordinal and the
    password of `object-detector.<k>`; the site never runs more replicas than
    the broker has identities for."""
    copy = with_example_secrets(K8S_DIR, tmp_path)
    objects = [o for o in yaml.safe_load_all(render(copy / "overlays" / "site-a")) if o]
    detector = next(
        o
        for o in objects
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "object-detector"
    )
    spec = detector["spec"]
    assert spec["ordinals"]["start"] == 1 and spec["podManagementPolicy"] == "Parallel"
    assert 1 < spec["replicas"] <= dynsec.REPLICAS[OBJECT_DETECTOR]
    pod = spec["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert "EDGEGW_MQTT_PASSWORD" not in env  # one shared password would be one identity
    index = env["EDGEGW_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index == "metadata.labels['apps.kubernetes.io/pod-index']"
    password_file = env["EDGEGW_MQTT_PASSWORD_FILE"]["value"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "replica-passwords"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "replica-passwords"]
    files = {item["path"]: item["key"] for item in volume["secret"]["items"]}
    for k in range(1, dynsec.REPLICAS[OBJECT_DETECTOR] + 1):
        path = password_file.replace("$(EDGEGW_REPLICA)", str(k))
        assert path == f"{mount['mountPath']}/{Path(path).name}"
        assert files[Path(path).name] == env_name(f"{OBJECT_DETECTOR}.{k}")


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
