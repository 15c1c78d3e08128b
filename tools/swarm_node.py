"""A second swarm node on this machine: `make swarm-node` / `make swarm-node-down`.

    python -m tools.swarm_node up [--registry-port 5000]    # after `make swarm`
    python -m tools.swarm_node down

`up` makes a network namespace joined to this host by a veth pair on a
private /30 (host 10.231.0.1, node 10.231.0.2), starts a second `dockerd` in
it (its own data root, exec root, socket, containerd, hostname
`edgegw-node2`), and joins that engine to this engine's swarm as a worker.
The stack's images are `127.0.0.1:<port>/...` (a loopback registry is the
only kind dockerd trusts without TLS, and the shared engine cannot be
restarted to trust another): a forwarder listens on 127.0.0.1:<port> *inside*
the namespace and connects to the registry on 127.0.0.1:<port> of the host,
so the same image reference pulls on both nodes. `down` undoes all of it: the
worker leaves, the manager forgets the node, dockerd and the forwarders stop,
the namespace, the veth pair and the node's data are removed.
tests/e2e/test_swarm_node.py drives the same functions.

`forward` is the forwarder itself (started by `up` in the background): it
binds its listening socket in the namespace (setns, then back), and dials
the registry from the host's namespace, so the registry stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools import swarm  # noqa: E402

CLONE_NEWNET = 0x40000000
# A forwarded connection idle this long is closed (a layer's download never
# stalls that long); a dial that takes longer than CONNECT_S fails.
IDLE_S = 120.0
CONNECT_S = 10.0
CHUNK = 1 << 16


@dataclass(frozen=True)
class Node:
    """Names and addresses of the simulated node; the defaults are `make swarm-node`'s."""

    name: str = "edgegw-node2"
    host_if: str = "egw-n2h"
    node_if: str = "egw-n2n"
    host_addr: str = "10.231.0.1"
    node_addr: str = "10.231.0.2"
    prefix: int = 30

    @property
    def netns(self) -> Path:
        return Path("/run/netns") / self.name

    @property
    def data_root(self) -> Path:
        return Path("/var/lib") / self.name

    @property
    def run_dir(self) -> Path:
        return Path("/run") / self.name

    @property
    def socket(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    def docker(self, *args: str, check: bool = True, timeout_s: float = 120.0) -> str:
        """The docker CLI against this node's engine."""
        return swarm.docker("-H", self.socket, *args, check=check, timeout_s=timeout_s)


def run(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def in_netns(node: Node, *args: str, check: bool = True) -> str:
    """A command in the node's network namespace only (`ip netns exec` would
    also remount /sys, hiding the cgroup mounts dockerd needs)."""
    return run("nsenter", f"--net={node.netns}", *args, check=check)


def make_network(node: Node) -> None:
    """The namespace, its loopback, the veth pair and a default route via the host."""
    run("ip", "netns", "add", node.name)
    run("ip", "link", "add", node.host_if, "type", "veth", "peer", "name", node.node_if)
    run("ip", "link", "set", node.node_if, "netns", node.name)
    run("ip", "addr", "add", f"{node.host_addr}/{node.prefix}", "dev", node.host_if)
    run("ip", "link", "set", node.host_if, "up")
    in_netns(node, "ip", "link", "set", "lo", "up")
    in_netns(node, "ip", "addr", "add", f"{node.node_addr}/{node.prefix}", "dev", node.node_if)
    in_netns(node, "ip", "link", "set", node.node_if, "up")
    in_netns(node, "ip", "route", "add", "default", "via", node.host_addr)


def start_engine(node: Node, timeout_s: float = 60.0) -> None:
    """dockerd (and the containerd it starts) in the namespace, with its own
    hostname (a swarm node's name) and everything on disk apart from the
    main engine's; iptables, bridge and storage driver as the main engine's,
    which is safe: netfilter and docker0 are per network namespace."""
    node.run_dir.mkdir(parents=True, exist_ok=True)
    node.data_root.mkdir(parents=True, exist_ok=True)
    config = node.run_dir / "daemon.json"
    config.write_text("{}\n")  # not /etc/docker/daemon.json, whatever it says
    dockerd = [
        "dockerd",
        f"--config-file={config}",
        f"--data-root={node.data_root / 'docker'}",
        f"--exec-root={node.run_dir / 'exec'}",
        f"--pidfile={node.run_dir / 'dockerd.pid'}",
        f"--host={node.socket}",
        f"--cgroup-parent=/{node.name}",
    ]
    script = f'hostname {node.name} && exec "$@"'
    with (node.run_dir / "dockerd.log").open("ab") as log:
        subprocess.Popen(
            [
                "nsenter",
                f"--net={node.netns}",
                "unshare",
                "--uts",
                "sh",
                "-c",
                script,
                "sh",
                *dockerd,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while node.docker("version", "--format", "{{.Server.Version}}", check=False) == "":
        if time.monotonic() > deadline:
            log_tail = (node.run_dir / "dockerd.log").read_text()[-2000:]
            raise TimeoutError(f"{node.name}'s dockerd did not answer in {timeout_s} s: {log_tail}")
        time.sleep(0.5)


def start_forwarder(node: Node, port: int, timeout_s: float = 10.0) -> None:
    """127.0.0.1:port in the namespace -> 127.0.0.1:port of the host."""
    pidfile = node.run_dir / f"forward-{port}.pid"
    port_arg = ["--port", str(port)]
    with (node.run_dir / f"forward-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.swarm_node", "--name", node.name, "forward", *port_arg],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    pidfile.write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    probe = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/v2/', timeout=2)"
    while not _answers(node, probe):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the forwarder to :{port} did not answer in the namespace")
        time.sleep(0.3)


def _answers(node: Node, probe: str) -> bool:
    done = subprocess.run(
        ["nsenter", f"--net={node.netns}", sys.executable, "-c", probe],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return done.returncode == 0


def manager_address() -> str:
    """The address the manager advertises (the node reaches it through the host)."""
    return swarm.docker("info", "--format", "{{.Swarm.NodeAddr}}").strip()


def route_from_manager(node: Node) -> str:
    """The host's route to the node, sent from the address the manager
    advertises (join() says why); that address."""
    manager = manager_address()
    run("ip", "route", "replace", f"{node.node_addr}/32", "dev", node.host_if, "src", manager)
    return manager


def join(node: Node) -> str:
    """Join the node's engine to this engine's swarm as a worker; its node id.

    The host sends to the node from the address the manager advertises: the
    node's overlay forwarding entries name the manager by that address, and
    the kernel's VXLAN drops a packet whose outer source differs from the
    static entry of its inner source MAC ("don't migrate static entries";
    with the veth's own 10.231.0.1 as source, nothing came back to the node)."""
    manager = route_from_manager(node)
    token = swarm.docker("swarm", "join-token", "-q", "worker").strip()
    join_args = ["--token", token, "--advertise-addr", node.node_addr, f"{manager}:2377"]
    node.docker("swarm", "join", *join_args)
    return node.docker("info", "--format", "{{.Swarm.NodeID}}").strip()


def wait_ready(node_id: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while swarm.docker("node", "inspect", "--format", "{{.Status.State}}", node_id).strip() != (
        "ready"
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node_id} not ready in {timeout_s} s")
        time.sleep(1)


def up(node: Node, registry_ports: Sequence[int], timeout_s: float = 60.0) -> str:
    """The whole node, joined: its swarm node id. Undo with `down` (also on failure)."""
    if swarm.docker("info", "--format", "{{.Swarm.ControlAvailable}}").strip() != "true":
        raise RuntimeError("this engine is no swarm manager: `make swarm` first")
    make_network(node)
    start_engine(node, timeout_s)
    for port in registry_ports:
        start_forwarder(node, port)
    node_id = join(node)
    wait_ready(node_id, timeout_s)
    return node_id


def cut_off(node: Node, *, connected: bool = False) -> None:
    """The node's link down, as a node that lost its power or its network
    would look to the manager (its engine and containers go on, unreachable);
    `connected=True` brings it back."""
    run("ip", "link", "set", node.host_if, "up" if connected else "down")
    if connected:  # the link's routes went with it
        route_from_manager(node)


def _stop_pid(pidfile: Path, timeout_s: float = 30.0) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # ProcessLookupError once it is gone
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


def _mounts_under(*roots: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].encode().decode("unicode_escape")
        if any(target == str(r) or target.startswith(f"{r}/") for r in roots):
            found.append(target)
    return sorted(found, key=len, reverse=True)


def down(node: Node) -> dict[str, object]:
    """Leave, forget, stop, delete; each step tried whatever failed before.
    What is left (all empty/false when clean)."""
    node_id = ""
    if node.netns.exists() and Path(node.socket[len("unix://") :]).exists():
        node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}", check=False).strip()
        node.docker("swarm", "leave", "--force", check=False, timeout_s=60)
        # Containers of tasks that leaving did not stop (normally none).
        running = node.docker("ps", "-aq", check=False).split()
        if running:
            node.docker("rm", "-f", *running, check=False)
    if node_id:
        deadline = time.monotonic() + 30
        while swarm.docker("node", "rm", "--force", node_id, check=False) == "" and (
            node_id in swarm.docker("node", "ls", "-q", check=False).split()
        ):
            if time.monotonic() > deadline:
                break
            time.sleep(1)
    for pidfile in node.run_dir.glob("forward-*.pid"):
        _stop_pid(pidfile, 5)
    _stop_pid(node.run_dir / "dockerd.pid")
    for target in _mounts_under(node.data_root, node.run_dir):
        run("umount", "-l", target, check=False)
    run("ip", "link", "del", node.host_if, check=False)
    run("ip", "netns", "del", node.name, check=False)
    shutil.rmtree(node.data_root, ignore_errors=True)
    shutil.rmtree(node.run_dir, ignore_errors=True)
    return leftovers(node, node_id)


def leftovers(node: Node, node_id: str = "") -> dict[str, object]:
    nodes = swarm.docker("node", "ls", "-q", check=False).split()
    return {
        "node_in_swarm": bool(node_id) and node_id in nodes,
        "netns": node.netns.exists(),
        "veth": Path("/sys/class/net", node.host_if).exists(),
        "data_root": node.data_root.exists(),
        "run_dir": node.run_dir.exists(),
        "mounts": _mounts_under(node.data_root, node.run_dir),
        "processes": run("pgrep", "-f", f"{node.run_dir}/", check=False).split(),
    }


# The forwarder.


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with path.open("rb") as ns:
        if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")


@contextlib.contextmanager
def network_namespace(path: Path) -> Iterator[None]:
    """This thread in another network namespace for the block (sockets made
    there stay there)."""
    home = Path("/proc/thread-self/ns/net")
    with home.open("rb") as mine:
        _setns(path)
        try:
            yield
        finally:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(mine.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await asyncio.wait_for(reader.read(CHUNK), IDLE_S):
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), IDLE_S)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


async def _serve(port: int, client: asyncio.StreamReader, back: asyncio.StreamWriter) -> None:
    try:
        upstream = asyncio.open_connection("127.0.0.1", port, limit=CHUNK)
        reader, writer = await asyncio.wait_for(upstream, CONNECT_S)
    except (OSError, TimeoutError):
        back.close()
        return
    await asyncio.gather(_pipe(client, writer), _pipe(reader, back))


async def forward(netns: Path, port: int) -> None:
    import socket

    with network_namespace(netns):
        listener = socket.create_server(("127.0.0.1", port))
    server = await asyncio.start_server(lambda r, w: _serve(port, r, w), sock=listener, limit=CHUNK)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.swarm_node")
    parser.add_argument("--name", default=Node.name)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="make the node and join it to this swarm as a worker")
    start.add_argument("--registry-port", type=int, action="append", default=[])
    commands.add_parser("down", help="leave, remove the node, delete what up made")
    relay = commands.add_parser("forward", help="(internal) the namespace's registry forwarder")
    relay.add_argument("--port", type=int, required=True)
    args = parser.parse_args(list(argv) if argv is not None else None)
    node = Node(name=args.name)
    if args.command == "forward":
        asyncio.run(forward(node.netns, args.port))
    elif args.command == "up":
        if node.netns.exists():
            raise SystemExit(f"{node.name} is up already (`make swarm-node-down` removes it)")
        try:
            node_id = up(node, args.registry_port or [5000])
        except BaseException:
            down(node)
            raise
        print(json.dumps({"node": node.name, "id": node_id, "address": node.node_addr}))
    else:
        print(json.dumps(down(node)))


if __name__ == "__main__":
    main()
