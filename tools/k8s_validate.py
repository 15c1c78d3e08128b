"""Render every site overlay of deploy/k8s with `kubectl kustomize` and check
each object against the Kubernetes OpenAPI schema, offline (the schemas ship
inside the PyPI package kubernetes-validate). No cluster is needed or used.

    python -m tools.k8s_validate [--k8s-dir deploy/k8s] [--version 1.31.0]

The overlays read Secrets from files the operator writes; the check runs on a
copy where each missing secret file is its committed `.example` placeholder.
Prints JSON; exits 1 when an overlay does not render or an object is invalid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

K8S_DIR = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
# k3s's current minor when this was written; the package ships 1.25 onwards.
KUBERNETES_VERSION = "1.31.0"


@dataclass
class OverlayReport:
    overlay: str
    objects: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def kubectl() -> str:
    """Debian's kubernetes-client, or the binary EDGEGW_KUBECTL names."""
    return os.environ.get("EDGEGW_KUBECTL") or shutil.which("kubectl") or "kubectl"


def with_example_secrets(source: Path, into: Path) -> Path:
    """A copy of `source` where each missing secret file is its placeholder."""
    copy = into / "k8s"
    shutil.copytree(source, copy)
    for example in copy.glob("overlays/*/secrets/*.example"):
        real = example.with_suffix("")
        if not real.exists():
            shutil.copyfile(example, real)
    return copy


def render(overlay: Path) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"kubectl kustomize {overlay.name} failed: {done.stderr.strip()}")
    return done.stdout


def policy_errors(obj: dict[str, Any]) -> list[str]:
    """What the schema cannot say: every container has limits and, in a
    workload, probes; stages run as non-root on a read-only root."""
    kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
    if kind not in ("Deployment", "StatefulSet"):
        return []
    pod = obj["spec"]["template"]["spec"]
    errors = []
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        where = f"{kind}/{name} container {container.get('name')}"
        limits = container.get("resources", {}).get("limits", {})
        if not {"cpu", "memory"} <= set(limits):
            errors.append(f"{where}: no cpu and memory limits")
    for container in pod.get("containers", []):
        where = f"{kind}/{name} container {container.get('name')}"
        if not {"livenessProbe", "readinessProbe"} <= set(container):
            errors.append(f"{where}: no liveness and readiness probes")
        if kind == "Deployment":
            context = container.get("securityContext", {})
            if not context.get("readOnlyRootFilesystem"):
                errors.append(f"{where}: root file system not read-only")
            if not pod.get("securityContext", {}).get("runAsNonRoot"):
                errors.append(f"{where}: may run as root")
    return errors


def validate_rendered(text: str, overlay: str, version: str) -> OverlayReport:
    import kubernetes_validate
    import yaml

    report = OverlayReport(overlay)
    for obj in yaml.safe_load_all(text):
        if not obj:
            continue
        report.objects += 1
        kind = str(obj.get("kind"))
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        name = f"{kind}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            report.errors.append(f"{name}: {path}: {error.message}")
        except kubernetes_validate.utils.SchemaNotFoundError as error:
            report.errors.append(f"{name}: no schema: {error}")
        report.errors.extend(policy_errors(obj))
    return report


def validate_tree(k8s_dir: Path, version: str = KUBERNETES_VERSION) -> list[OverlayReport]:
    """Render and check every overlay of `k8s_dir` (on a copy with placeholders)."""
    reports = []
    with tempfile.TemporaryDirectory(prefix="edgegw-k8s-") as scratch:
        copy = with_example_secrets(k8s_dir, Path(scratch))
        for overlay in sorted(p for p in (copy / "overlays").iterdir() if p.is_dir()):
            try:
                text = render(overlay)
            except ValueError as error:
                reports.append(OverlayReport(overlay.name, errors=[str(error)]))
                continue
            reports.append(validate_rendered(text, overlay.name, version))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k8s-dir", type=Path, default=K8S_DIR)
    parser.add_argument("--version", default=KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    reports = validate_tree(args.k8s_dir, args.version)
    version = subprocess.run(
        [kubectl(), "version", "--client"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = {
        "kubectl": version.splitlines()[0] if version else "?",
        "kubernetes_schema": args.version,
        "overlays": [vars(r) for r in reports],
        "valid": bool(reports) and not any(r.errors for r in reports),
    }
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if out["valid"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
