"""The house's walls, enforced: no stage imports another stage.

Below the stages: schemas/ (imports nothing of services/), services/common,
services/inference and services/media (import no stage). Only profiling/
reaches into stages; the CLI starts a stage by its name (importlib), never
by an import statement. Every import counts: module level, inside functions,
under TYPE_CHECKING, absolute or relative, `import services.x` or
`from services import x`, and importlib.import_module("services.x").
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BELOW_STAGES = frozenset({"common", "inference", "media"})
CLI = "cli"


@dataclass(frozen=True)
class Imported:
    file: Path
    line: int
    module: str  # absolute dotted name


def module_name(root: Path, file: Path) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(file_module: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    package = file_module.split(".") if is_package else file_module.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module] if module else base)


def imports_of(root: Path, file: Path) -> Iterator[Imported]:
    """Every module `file` imports, wherever the statement sits."""
    tree = ast.parse(file.read_text(), filename=str(file))
    own = module_name(root, file)
    is_package = file.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Imported(file, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(own, is_package, node.level, node.module)
            yield Imported(file, node.lineno, base)
            # `from services import gas_average` imports the package services.gas_average.
            for alias in node.names:
                if alias.name != "*":
                    yield Imported(file, node.lineno, f"{base}.{alias.name}")
        elif isinstance(node, ast.Call) and _is_import_call(node):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Imported(file, node.lineno, first.value)


def _is_import_call(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in {"import_module", "__import__"} and bool(node.args)


def stages(root: Path) -> frozenset[str]:
    services = root / "services"
    return frozenset(
        path.parent.name
        for path in services.glob("*/__init__.py")
        if path.parent.name not in BELOW_STAGES | {CLI}
    )


def _services_package(module: str) -> str | None:
    """`gas_average` for services.gas_average.stage; None outside services."""
    parts = module.split(".")
    if parts[0] != "services" or len(parts) < 2:
        return None
    return parts[1]


def _wall_crossed(owner: str, module: str, stage_names: frozenset[str]) -> str | None:
    """Why `module`, imported from services/<owner>, crosses a wall; None if it does not."""
    target = _services_package(module)
    if target in stage_names and target != owner:
        if owner == CLI:
            return f"cli imports stage {target} (start it by name with importlib)"
        kind = "stage" if owner in stage_names else "package below the stages"
        return f"{kind} {owner} imports stage {target}"
    if target == CLI and owner != CLI:
        return f"{owner} imports the cli"
    if module.split(".")[0] == "profiling" and owner != CLI:
        return f"{owner} imports profiling (profiling imports stages, not the reverse)"
    return None


def violations(root: Path) -> list[str]:
    """Every import that crosses a wall, as `file:line: why (module)`."""
    stage_names = stages(root)
    found: dict[tuple[str, str], str] = {}  # (file:line, why) -> the module named
    for file in sorted((root / "services").rglob("*.py")):
        owner = file.relative_to(root / "services").parts[0]
        for imported in imports_of(root, file):
            why = _wall_crossed(owner, imported.module, stage_names)
            if why is not None:
                key = (f"{imported.file.relative_to(root)}:{imported.line}", why)
                found[key] = min(found.get(key, imported.module), imported.module, key=len)
    for file in sorted((root / "schemas").rglob("*.py")):
        for imported in imports_of(root, file):
            if imported.module.split(".")[0] in {"services", "profiling"}:
                key = (f"{imported.file.relative_to(root)}:{imported.line}", "schemas imports")
                found[key] = min(found.get(key, imported.module), imported.module, key=len)
    return sorted(f"{where}: {why} ({module})" for (where, why), module in found.items())


def test_no_stage_imports_another_stage() -> None:
    found = violations(REPO)
    assert not found, "imports across the walls:\n" + "\n".join(found)


def test_the_stages_are_what_the_repository_holds() -> None:
    # A guard on the test itself: an empty stage set would pass anything.
    assert {"gas_average", "object_detector", "camera_capture", "audio_classifier"} <= stages(REPO)
    assert not stages(REPO) & BELOW_STAGES


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {
        "services/__init__.py": "",
        "services/common/__init__.py": "",
        "services/media/__init__.py": "",
        "services/cli/__init__.py": "",
        "services/alpha/__init__.py": "",
        "services/beta/__init__.py": "",
        "schemas/__init__.py": "",
        **files,
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_every_form_of_import_across_stages_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "services/alpha/top.py": "from services.beta.x import y\n",
            "services/alpha/plain.py": "import services.beta.x as x\n",
            "services/alpha/package.py": "from services import beta\n",
            "services/alpha/relative.py": "from ..beta import x\n",
            "services/alpha/sub/__init__.py": "from ...beta.x import y\n",
            "services/alpha/late.py": "def f():\n    from services.beta import x\n    return x\n",
            "services/alpha/dyn.py": "import importlib\nimportlib.import_module('services.beta')\n",
            "services/alpha/own.py": "from . import top\nfrom services.alpha.top import y\n",
            "services/alpha/low.py": "from services.common import x\nfrom services import media\n",
        },
    )
    found = "\n".join(violations(root))
    for name in ("top.py:1", "plain.py:1", "package.py:1", "relative.py:1", "late.py:2"):
        assert f"services/alpha/{name}: stage alpha imports stage beta" in found
    assert "services/alpha/sub/__init__.py:1: stage alpha imports stage beta" in found
    assert "services/alpha/dyn.py:2: stage alpha imports stage beta" in found
    assert "own.py" not in found and "low.py" not in found


def test_the_packages_below_schemas_and_the_cli_are_walled_too(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "services/media/frame.py": "from services.alpha import stage\n",
            "services/common/door.py": "from profiling import video\n",
            "services/cli/main.py": (
                "import importlib\n"
                "from profiling.cli import run\n"
                "from services.beta.stage import run\n"
                "importlib.import_module(f'services.{name}')\n"
            ),
            "services/beta/stage.py": "from services.cli import main\n",
            "schemas/topics.py": "from services.common import settings\n",
        },
    )
    found = violations(root)
    assert found == [
        "schemas/topics.py:1: schemas imports (services.common)",
        "services/beta/stage.py:1: beta imports the cli (services.cli)",
        "services/cli/main.py:3: cli imports stage beta (start it by name with importlib)"
        " (services.beta.stage)",
        "services/common/door.py:1: common imports profiling (profiling imports stages,"
        " not the reverse) (profiling)",
        "services/media/frame.py:1: package below the stages media imports stage alpha"
        " (services.alpha)",
    ]


def test_the_cli_imports_no_stage_and_nothing_heavy_until_a_subcommand_runs() -> None:
    code = (
        "import sys; from services.cli.main import build_parser; build_parser(); "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = set(done.stdout.split())
    heavy = {"numpy", "scipy", "cv2", "onnxruntime", "ai_edge_litert", "profiling"}
    assert not loaded & heavy
    stages_loaded = sorted(module for module in loaded if _services_package(module) in stages(REPO))
    assert not stages_loaded, stages_loaded
