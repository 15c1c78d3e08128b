"""`make swarm`: the gateway as a Docker swarm stack (deploy/swarm/).

    python -m tools.swarm up [--registry 127.0.0.1:5000] [--stack edgegw] [--cloud DIR] [--publish]
    python -m tools.swarm down [--stack edgegw] [--volumes]

`up` makes this engine a swarm manager when it is none (`docker swarm init`),
labels this node `edgegw.gateway=true` (where the broker and the stateful
stages go), writes the secrets' files once (var/swarm/secrets: one broker
password per identity and the broker's dynamic security seed, kept: a swarm
secret cannot change under a running service), builds the three images
(compose/*.Dockerfile) and pushes them to the gateway's registry (`make
registry`), then `docker stack deploy`s stack.yml, with cloud.yml when a
folder of cloud TLS files and password is given (`--cloud`, and
EDGEGW_CLOUD_HOST, EDGEGW_CLOUD_USERNAME in the environment), and publish.yml
with `--publish`. `down` is `docker stack rm`, waits until the stack's
containers, networks and secrets are gone and, with `--volumes`, removes its
volumes too (swarm never does). tests/e2e/test_swarm.py drives the same
functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from broker import dynsec  # noqa: E402
from broker.generate import DYNSEC_FILE, env_name, load_secrets, write_compose_env  # noqa: E402

STACK_DIR = REPO / "deploy" / "swarm"
SECRETS_DIR = REPO / "var" / "swarm" / "secrets"
GATEWAY_LABEL = "edgegw.gateway"
NAMESPACE_LABEL = "com.docker.stack.namespace"
# What each image's build reads (compose/*.Dockerfile), sent as a context with
# the links resolved: a worktree's .cache is a symbolic link.
IMAGES = {
    "edgegw-stage": "compose/stage.Dockerfile",
    "edgegw-broker": "compose/broker.Dockerfile",
    "edgegw-tsdb": "compose/tsdb.Dockerfile",
}
CONTEXT = ("pyproject.toml", "README.md", "schemas", "services", "broker", "compose")
CONTEXT_CACHE = (".cache/models", ".cache/media")
HOST_CAS = Path("/usr/local/share/ca-certificates")


def docker(*args: str, check: bool = True, timeout_s: float = 120.0, **kw: object) -> str:
    done = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
        **kw,  # type: ignore[call-overload]
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.strip()[-2000:]}")
    return str(done.stdout)


def write_secrets(directory: Path = SECRETS_DIR) -> dict[str, str]:
    """One file per identity holding its password, and the broker's seed;
    made once and kept (returns the passwords by identity)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    env_file = directory / "passwords.env"
    if not (directory / DYNSEC_FILE).exists() or not env_file.exists():
        write_compose_env(env_file)  # also writes the seed, hashed with new salts
    found = load_secrets(env_file)
    passwords = {user: found[env_name(user)] for user in dynsec.identities()}
    for user, password in passwords.items():
        path = directory / user
        if not path.exists() or path.read_text() != password:
            path.write_text(password)
            path.chmod(0o600)
    return passwords


def ensure_swarm(advertise_addr: str | None = None) -> bool:
    """Make this engine a swarm manager unless it is one; whether it was made here."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state == "active":
        return False
    args = ["swarm", "init"]
    if advertise_addr:
        args += ["--advertise-addr", advertise_addr]
    elif default := default_address():
        args += ["--advertise-addr", default]
    docker(*args)
    return True


def default_address() -> str | None:
    """This host's address on its default route (swarm asks when there are several)."""
    route = subprocess.run(
        ["ip", "-4", "route", "get", "192.0.2.255"], capture_output=True, text=True, check=False
    ).stdout.split()
    return route[route.index("src") + 1] if "src" in route else None


def label_gateway_node(*, add: bool = True) -> None:
    node = docker("info", "--format", "{{.Swarm.NodeID}}").strip()
    flag = ["--label-add", f"{GATEWAY_LABEL}=true"] if add else ["--label-rm", GATEWAY_LABEL]
    docker("node", "update", *flag, node, check=add)


def build_context(directory: Path) -> Path:
    """A copy of what the builds read in `directory`, links resolved; the
    host's extra CAs in compose/build-ca/ (pip behind a TLS-intercepting proxy,
    as tools/compose.sh does)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.crt", ".env", "dynamic-security.json")
    for name in CONTEXT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=ignore)
        else:
            shutil.copy(source, directory / name)
    for name in CONTEXT_CACHE:
        shutil.copytree(REPO / name, directory / name, symlinks=False)
    for ca in sorted(HOST_CAS.glob("*.crt")):
        shutil.copy(ca, directory / "compose" / "build-ca" / ca.name)
    return directory


def base_image() -> str:
    """The bookworm base to build on (tools/docker_engine.sh: pulled, or debootstrapped)."""
    done = subprocess.run(
        ["bash", str(REPO / "tools" / "docker_engine.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
    )
    return done.stdout.strip().splitlines()[-1]


def build_and_push(registry: str, tag: str) -> dict[str, str]:
    """Build the images, push them to `registry`; their references."""
    base = base_image()
    pushed = {}
    with tempfile.TemporaryDirectory(prefix="edgegw-swarm-build-") as scratch:
        context = build_context(Path(scratch))
        for name, dockerfile in IMAGES.items():
            reference = f"{registry}/{name}:{tag}"
            build = ["build", "-q", "-f", str(context / dockerfile), "-t", reference]
            docker(*build, "--build-arg", f"BASE_IMAGE={base}", str(context), timeout_s=1800)
            docker("push", "-q", reference, timeout_s=600)
            pushed[name] = reference
    return pushed


def stack_files(*, cloud: bool, publish: bool) -> list[Path]:
    extra = [name for name, on in (("cloud.yml", cloud), ("publish.yml", publish)) if on]
    return [STACK_DIR / name for name in ("stack.yml", *extra)]


def deploy(stack: str, files: Sequence[Path], env: Mapping[str, str]) -> None:
    """`docker stack deploy` with `env` for the files' ${...}."""
    args = ["stack", "deploy", "--prune"]
    for path in files:
        args += ["-c", str(path)]
    docker(*args, stack, env={**os.environ, **env}, timeout_s=300)


def services(stack: str) -> dict[str, str]:
    """Service name -> `running/desired` of the stack."""
    lines = docker("stack", "services", stack, "--format", "{{.Name}} {{.Replicas}}", check=False)
    return dict(line.split(" ", 1) for line in lines.splitlines() if " " in line)


def wait_converged(stack: str, timeout_s: float = 300.0) -> dict[str, str]:
    """Wait until every service runs as many tasks as it wants."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = services(stack)
        converged = all(_running(v) == _wanted(v) for v in found.values())
        if found and converged:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stack} did not converge in {timeout_s} s: {found}")
        time.sleep(1)


def _running(replicas: str) -> int:
    return int(replicas.split("/")[0])


def _wanted(replicas: str) -> int:
    return int(replicas.split("/")[1].split()[0])


def leftovers(stack: str) -> dict[str, list[str]]:
    """What of the stack the engine still has, by kind."""
    label = f"label={NAMESPACE_LABEL}={stack}"
    kinds = {
        "services": ["service", "ls", "-q", "--filter", label],
        "containers": ["ps", "-aq", "--filter", label],
        "networks": ["network", "ls", "-q", "--filter", label],
        "secrets": ["secret", "ls", "-q", "--filter", label],
        "configs": ["config", "ls", "-q", "--filter", label],
        "volumes": ["volume", "ls", "-q", "--filter", label],
    }
    return {kind: docker(*args).split() for kind, args in kinds.items()}


def remove(stack: str, *, volumes: bool, timeout_s: float = 120.0) -> dict[str, list[str]]:
    """`docker stack rm`, wait for its containers and networks to go (and remove
    its volumes when asked); what is left."""
    docker("stack", "rm", stack, check=False)
    deadline = time.monotonic() + timeout_s
    while True:
        left = leftovers(stack)
        busy = {kind: ids for kind, ids in left.items() if ids and kind != "volumes"}
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(1)
    if volumes and left["volumes"]:
        docker("volume", "rm", *left["volumes"], check=False)
        left = leftovers(stack)
    return left


def tasks(service: str) -> list[dict[str, str]]:
    """The service's tasks (`docker service ps`), newest first, as dicts."""
    out = docker("service", "ps", service, "--no-trunc", "--format", "{{json .}}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def containers(service: str) -> list[str]:
    """Ids of the service's running containers on this node."""
    label = f"label=com.docker.swarm.service.name={service}"
    return docker("ps", "-q", "--filter", label).split()


def deploy_env(
    registry: str, tag: str, secrets_dir: Path, extra: Mapping[str, str] = {}
) -> dict[str, str]:
    return {
        "EDGEGW_REGISTRY": registry,
        "EDGEGW_TAG": tag,
        "EDGEGW_SWARM_SECRETS": str(secrets_dir),
        **extra,
    }


def up(args: argparse.Namespace) -> None:
    write_secrets(args.secrets)
    ensure_swarm(args.advertise_addr)
    label_gateway_node()
    build_and_push(args.registry, args.tag)
    extra = {"EDGEGW_CLOUD_SECRETS": str(args.cloud)} if args.cloud else {}
    env = deploy_env(args.registry, args.tag, args.secrets, extra)
    deploy(args.stack, stack_files(cloud=args.cloud is not None, publish=args.publish), env)
    print(json.dumps(wait_converged(args.stack), indent=1))


def down(args: argparse.Namespace) -> None:
    left = remove(args.stack, volumes=args.volumes)
    print(json.dumps(left))


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.swarm")
    parser.add_argument("--stack", default="edgegw")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="build, push and deploy the stack")
    start.add_argument("--registry", default="127.0.0.1:5000")
    start.add_argument("--tag", default="latest")
    start.add_argument("--secrets", type=Path, default=SECRETS_DIR)
    start.add_argument("--cloud", type=Path, help="ca.pem, client.pem, client.key, password")
    start.add_argument("--publish", action="store_true", help="broker and web on the node's ports")
    start.add_argument("--advertise-addr", help="for `docker swarm init` (default: route's)")
    stop = commands.add_parser("down", help="docker stack rm, and wait until it is gone")
    stop.add_argument("--volumes", action="store_true", help="remove the stack's volumes too")
    args = parser.parse_args(list(argv) if argv is not None else None)
    (up if args.command == "up" else down)(args)


if __name__ == "__main__":
    main()
