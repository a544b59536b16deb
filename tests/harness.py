"""What several test folders share (bearer_grpc.testing holds the rest):

- a real TokenService on a free port, in a loop thread of its own (:func:`running_service`);
  tests talk to it with ordinary sync gRPC clients, exactly as users' services would;
- the kit's Echo protected by bearer_grpc's server interceptor (:func:`protect`), with the
  policy the interceptor, security and fault tests use (:func:`echo_policy`);
- :func:`wait_until`, a deadline instead of a sleep, and :func:`refusal`;
- child processes read line by line (:class:`ServeProcess`), ``bearer-grpc serve`` among
  them (:func:`running_server`);
- a fresh PostgreSQL schema per use (:func:`pg_schema_url`).
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Final, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import bearer_grpc
import bearer_grpc.aio
from bearer_grpc import Policy
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.keys import KeyEncryptionKey
from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.service.admin import Admin, NewClient
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.server import ServeConfig, TokenServer
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import SqlStore, open_store
from bearer_grpc.testing import Echo, Kind, LoopThread, path, serve, serve_aio
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

__all__ = ["LoopThread"]  # re-exported: tests/store imports it from here

_T = TypeVar("_T")


@dataclass
class RunningService:
    """A started TokenService and what tests need to reach it."""

    server: TokenServer
    store: SqlStore
    loop: LoopThread
    target: str
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def authority(self) -> TokenAuthority:
        """The service's authority (for white-box checks)."""
        return self.server.authority

    @property
    def admin(self) -> Admin:
        """Operator actions on the service's store."""
        return Admin(self.store)

    def stub(self, **channel_kwargs: Any) -> pb_grpc.TokenServiceStub:
        """A TokenService stub on a fresh plaintext channel (closed at stop)."""
        channel = grpc.insecure_channel(self.target, **channel_kwargs)
        self.channels.append(channel)
        return pb_grpc.TokenServiceStub(channel)

    def add_client(
        self,
        name: str | None = None,
        scopes: tuple[str, ...] = ("orders.read", "orders.write"),
        audiences: tuple[str, ...] = ("orders",),
    ) -> NewClient:
        """Create a client (the server sees it on the next lookup: the store is shared),
        named ``name`` or a name no other client has."""
        name = name or f"client-{uuid.uuid4().hex[:16]}"
        return self.admin.add_client(name, scopes=scopes, audiences=audiences)

    def issue(self, client: NewClient, **request: Any) -> pb.IssueTokenResponse:
        """IssueToken with client credentials."""
        req = pb.IssueTokenRequest(
            client_credentials=pb.ClientCredentialsGrant(
                client_id=client.client_id, client_secret=client.client_secret
            ),
            **request,
        )
        response: pb.IssueTokenResponse = self.stub().IssueToken(req, timeout=10)
        return response


@contextmanager
def running_service(
    store_url: str,
    *,
    settings: ServiceSettings | None = None,
    clock: Clock = system_clock,
    kek: KeyEncryptionKey | None = None,
    config: ServeConfig | None = None,
    busy_timeout_s: float = 5.0,
) -> Iterator[RunningService]:
    """Start a TokenService on ``store_url`` listening on 127.0.0.1, port 0.

    It stops in the one order that leaves no thread touching a closed store: the server
    (``TokenServer.stop`` also waits for a store sync already running in its pool), then
    the loop's default executor (``LoopThread.close`` drains it), then the store.
    """
    store = open_store(store_url, busy_timeout_s=busy_timeout_s)
    authority = TokenAuthority(store, settings or ServiceSettings(), kek=kek, clock=clock)
    server = TokenServer(authority, config or ServeConfig(listen="127.0.0.1:0", grace=1))
    try:
        with LoopThread() as loop:
            port = loop.run(server.start())
            service = RunningService(server, store, loop, f"127.0.0.1:{port}")
            try:
                yield service
            finally:
                for channel in service.channels:
                    channel.close()
                loop.run(server.stop(grace=1))
    finally:
        store.close()


def refusal(action: Callable[[], Any]) -> grpc.RpcError:
    """The error the gRPC call ``action`` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as failed:
        action()
    return failed.value


def wait_until(predicate: Callable[[], _T], *, timeout: float = 5.0, interval: float = 0.01) -> _T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds.

    A deadline, not a sleep: it returns as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


# -- the Echo, protected ------------------------------------------------------------------

ECHO_AUDIENCE: Final = "echo"
"""The audience the protected Echo servers require."""
ECHO_SCOPE: Final = "echo.use"
"""The scope every protected Echo method needs (:func:`echo_policy`)."""
ECHO_ADMIN_SCOPE: Final = "echo.admin"
"""The scope ``Admin`` needs instead."""
ECHO_METHODS: Final[dict[str, Kind]] = {"Public": "unary_unary", "Admin": "unary_unary"}
"""The Echo's methods besides the four kinds: two unary ones for the policy to tell apart."""


def echo_policy(**kwargs: Any) -> Policy:
    """Echo's rules: ``Public`` is public, ``Admin`` needs ``echo.admin``, the rest
    ``echo.use``; ``kwargs`` go to :class:`bearer_grpc.Policy`."""
    return Policy(
        public=[path("Public")],
        scopes={path("*"): [ECHO_SCOPE], path("Admin"): [ECHO_ADMIN_SCOPE]},
        **kwargs,
    )


@dataclass
class Protected:
    """A running Echo behind bearer_grpc's server interceptor, and what tests steer.

    Attributes:
        flavour: ``sync`` (``grpc.server``) or ``aio`` (``grpc.aio.server``).
        target: Its plaintext address.
        channel: A sync channel to it.
        interceptor: bearer_grpc's server interceptor (sync or aio, as the flavour).
        verifier: The interceptor's verifier.
        echo: The Echo it serves (its call counter and hooks).
    """

    flavour: str
    target: str
    channel: grpc.Channel
    interceptor: Any
    verifier: Any
    echo: Echo

    def revoke(self, token: IssuedToken) -> None:
        """Revoke ``token`` at this server's verifier, as WatchRevocations would."""
        self.verifier.local.revocations.add(token.token_id, token.expires_at)


@contextmanager
def protect(
    flavour: str,
    verifier: Any,
    policy: Policy | None = None,
    *,
    loop: LoopThread | None = None,
    echo: Echo | None = None,
    handlers: tuple[grpc.GenericRpcHandler, ...] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> Iterator[Protected]:
    """Serve an Echo (with :data:`ECHO_METHODS`) behind the interceptor of ``flavour``.

    Args:
        flavour: ``sync`` or ``aio``.
        verifier: A verifier of that flavour.
        policy: The interceptor's policy (default: bearer_grpc's).
        loop: Where an aio server runs (required for ``aio``).
        echo: The Echo to serve (default: a new one).
        handlers: More services next to the Echo (aio: with async behaviours).
        credentials: The port's server credentials (default: plaintext); ``channel``
            is then of no use, reach ``target`` with matching channel credentials.
    """
    echo = echo or Echo(ECHO_METHODS)
    interceptor: Any
    if flavour == "sync":
        interceptor = bearer_grpc.BearerServerInterceptor(verifier, policy)
        serving = serve(
            [echo.handler(), *handlers], interceptors=[interceptor], credentials=credentials
        )
    else:
        assert loop is not None, "an aio server needs a LoopThread"
        interceptor = bearer_grpc.aio.BearerServerInterceptor(verifier, policy)
        serving = loop.context(
            serve_aio(
                [echo.aio_handler(), *handlers],
                interceptors=[interceptor],
                credentials=credentials,
            )
        )
    with serving as target, grpc.insecure_channel(target) as channel:
        yield Protected(flavour, target, channel, interceptor, verifier, echo)


# -- child processes ----------------------------------------------------------------------

ENV_PREFIX: Final = "BEARER_GRPC_"
ERROR_PREFIX: Final = "bearer-grpc: error:"
"""How every error line of the command line starts."""
COMMAND_TIMEOUT: Final = 30.0
"""Longest one command run as a process may take, in seconds."""
START_TIMEOUT: Final = 20.0
"""Longest a child may take to start listening, in seconds."""
STOP_TIMEOUT: Final = 15.0
"""Longest a child may take to exit, in seconds."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without ``BEARER_GRPC_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra or {})
    return env


def bearer_grpc_command(*args: str) -> list[str]:
    """The argv of ``bearer-grpc ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "bearer_grpc", *args]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of ``text`` (gRPC's own log lines are skipped)."""
    found = []
    for line in text.splitlines():
        with suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                found.append(value)
    return found


class ServeProcess:
    """A child process whose stdout and stderr are read line by line as they come.

    Reader threads collect each stream and wake waiters on every line and at end of file,
    so waiting for a line takes exactly as long as the process needs, and a process that
    dies early fails the wait at once, with its output. Runs ``bearer-grpc serve`` (see
    :func:`start_server`), the example servers, or any command.

    Args:
        argv: The command.
        cwd: Its working directory.
        env: Variables added to :func:`clean_env`.
        umask: The child's umask (-1: ours).

    Attributes:
        proc: The child.
        listening: The ``listening`` log record, once :meth:`wait_listening` saw it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        umask: int = -1,
    ) -> None:
        self.argv = list(argv)
        self.listening: dict[str, Any] = {}
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=clean_env({"PYTHONFAULTHANDLER": "1", **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=umask,
        )
        self._cond = threading.Condition()
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._open = 2
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=("stdout", self.proc.stdout), daemon=True),
            threading.Thread(target=self._read, args=("stderr", self.proc.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __repr__(self) -> str:
        return f"ServeProcess({shlex.join(self.argv)!r}, returncode={self.proc.returncode})"

    def _read(self, name: str, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._cond:
                    self._lines[name].append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def lines(self, stream: str = "stdout") -> list[str]:
        """The lines ``stream`` has had so far."""
        with self._cond:
            return list(self._lines[stream])

    def stderr(self) -> str:
        """Everything the child wrote on stderr so far."""
        return "\n".join(self.lines("stderr"))

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records on stderr so far (bearer-grpc logs one per line)."""
        return json_lines(self.stderr())

    def output(self) -> str:
        """The command and both streams so far, for assertion messages."""
        return (
            f"{shlex.join(self.argv)}\n--- stdout\n"
            + "\n".join(self.lines("stdout"))
            + "\n--- stderr\n"
            + self.stderr()
        )

    def _wait(self, found: Callable[[], _T | None], timeout: float) -> _T | None:
        """``found()`` once it is not None; None once both streams ended without it.

        Raises:
            AssertionError: The deadline passed (the message holds the output).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = found()
                if value is not None or self._open == 0:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"still running after {timeout} s:\n{self.output()}")
                self._cond.wait(remaining)

    def wait_for_line(
        self, pattern: str, *, stream: str = "stdout", timeout: float = START_TIMEOUT
    ) -> re.Match[str]:
        """The first line of ``stream`` matching ``pattern``, waiting up to ``timeout``.

        Raises:
            AssertionError: The child ended, or the deadline passed, without such a line.
        """
        regex = re.compile(pattern)

        def first() -> re.Match[str] | None:
            matches = (regex.search(line) for line in self._lines[stream])
            return next((match for match in matches if match), None)

        match = self._wait(first, timeout)
        if match is None:
            raise AssertionError(f"no line matching {pattern!r}; it ended:\n{self.output()}")
        return match

    def _listening(self) -> dict[str, Any] | None:
        records = json_lines("\n".join(self._lines["stderr"]))
        return next((r for r in records if r.get("message") == "listening"), None)

    def wait_listening(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Wait for bearer-grpc's ``listening`` log record; fail if the child ends first."""
        record = self._wait(self._listening, timeout)
        if record is None:
            status = self.wait()
            raise AssertionError(f"exited {status} before listening:\n{self.output()}")
        self.listening = record
        return record

    def wait_exit_or_listening(self, timeout: float = START_TIMEOUT) -> int | None:
        """The exit status if the child ends first, None if it starts listening first."""
        if self._wait(self._listening, timeout) is not None:
            return None
        return self.wait()

    @property
    def port(self) -> int:
        """The bound port, from the ``listening`` record."""
        port: int = self.listening["port"]
        return port

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def channel(self, **kwargs: Any) -> grpc.Channel:
        """A plaintext channel to :attr:`target` (close it, or use it as a context manager)."""
        return grpc.insecure_channel(self.target, **kwargs)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the exit and for the output to be read; returns the exit status.

        Raises:
            AssertionError: Still running after ``timeout`` seconds (it is killed).
        """
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as err:
            self.kill()
            raise AssertionError(f"still running after {timeout} s:\n{self.output()}") from err
        for reader in self._readers:
            reader.join(timeout)
        return status

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (if still running), then wait for the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL if still running, and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)
        for reader in self._readers:
            reader.join(STOP_TIMEOUT)


@dataclass(frozen=True)
class CliResult:
    """How one ``bearer-grpc`` command ended (the fields of ``subprocess.CompletedProcess``).

    Attributes:
        args: The command's arguments.
        returncode: Its exit status.
        stdout: What it printed on stdout.
        stderr: What it printed on stderr.
    """

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


_IN_PROCESS = threading.Lock()
"""One in-process command at a time: it borrows the process's cwd, environment and stdio."""


def _exit_status(code: object) -> int:
    """The status ``SystemExit(code)`` ends a process with."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


@contextmanager
def _borrowed_process(cwd: Path, env: Mapping[str, str], stdin: str, umask: int) -> Iterator[None]:
    """This process's cwd, environment, stdin and umask as a child would have them."""
    saved_env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    saved_cwd, saved_stdin = os.getcwd(), sys.stdin
    saved_umask = os.umask(umask) if umask >= 0 else None
    try:
        for key in saved_env:
            del os.environ[key]
        os.environ.update(env)
        os.chdir(cwd)
        sys.stdin = io.StringIO(stdin)
        yield
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved_env)
        if saved_umask is not None:
            os.umask(saved_umask)


@dataclass
class Cli:
    """Runs ``bearer-grpc`` commands in ``cwd``, with ``env`` added to an environment
    without ``BEARER_GRPC_*`` variables.

    By default a command runs in this process (``bearer_grpc.cli.main(args)``, with this
    process's cwd, environment, stdin, stdout, stderr and umask lent to it for the call),
    which costs no interpreter start; ``process=True`` runs each one as a real
    ``python -m bearer_grpc``, for the tests of exit codes and output as a shell sees them.
    """

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    process: bool = False

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        umask: int = -1,
        timeout: float = COMMAND_TIMEOUT,
    ) -> CliResult:
        """Run one command; stdin is ``input`` (or empty), output is captured."""
        extra = {**self.env, **(env or {})}
        if self.process:
            done = subprocess.run(
                bearer_grpc_command(*args),
                cwd=self.cwd,
                env=clean_env(extra),
                input=input or "",
                capture_output=True,
                text=True,
                timeout=timeout,
                umask=umask,
                check=False,
            )
            return CliResult(list(args), done.returncode, done.stdout, done.stderr)
        from bearer_grpc.cli import main

        out, err = io.StringIO(), io.StringIO()
        with (
            _IN_PROCESS,
            _borrowed_process(self.cwd, extra, input or "", umask),
            redirect_stdout(out),
            redirect_stderr(err),
        ):
            try:
                status = main(list(args))
            except SystemExit as exit_:  # argparse: usage errors, --help, --version
                status = _exit_status(exit_.code)
        return CliResult(list(args), status, out.getvalue(), err.getvalue())

    def ok(self, *args: str, **kwargs: Any) -> CliResult:
        """Run a command that must succeed."""
        result = self(*args, **kwargs)
        assert result.returncode == 0, describe(result)
        assert "Traceback" not in result.stderr, describe(result)
        return result


def describe(result: CliResult) -> str:
    """The command, exit status and output, for assertion messages."""
    return (
        f"bearer-grpc {shlex.join(result.args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def assert_one_line_error(result: CliResult, status: int = 1) -> str:
    """The command failed with ``status``, printing exactly one ``bearer-grpc: error:`` line
    on stderr and no traceback. Returns that line."""
    assert result.returncode == status, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith(ERROR_PREFIX), describe(result)
    return lines[0]


def start_server(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    listen: str | None = "127.0.0.1:0",
    umask: int = -1,
    wait: bool = True,
) -> ServeProcess:
    """Start ``bearer-grpc serve ARGS`` in ``cwd`` and (by default) wait until it listens.

    The caller must stop or kill it; prefer :func:`running_server`.
    """
    argv = bearer_grpc_command("serve", *(["--listen", listen] if listen else []), *args)
    server = ServeProcess(argv, cwd=cwd, env=env, umask=umask)
    if wait:
        try:
            server.wait_listening()
        except BaseException:
            server.kill()
            raise
    return server


@contextmanager
def running_server(cwd: Path, *args: str, **kwargs: Any) -> Iterator[ServeProcess]:
    """A listening ``bearer-grpc serve`` child (see :func:`start_server`), killed on exit
    if still running; a test stops it itself to check how it exits."""
    server = start_server(cwd, *args, **kwargs)
    try:
        yield server
    finally:
        server.kill()


def health_status(target: str, service: str = "", timeout: float = 5.0) -> int:
    """``grpc.health.v1.Health/Check`` on a fresh channel: ``SERVING``, ``NOT_SERVING``..."""
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    status: int = response.status
    return status


SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING


def jwt_segment(token: str, index: int) -> dict[str, Any]:
    """Decode a compact JWS segment (0 = header, 1 = claims) without verifying anything."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


REPO: Final = Path(__file__).resolve().parents[1]
EXAMPLES: Final = REPO / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` as module ``examples_NAME`` (examples/ joins sys.path,
    at the end, for the generated ``shop.v1`` package the examples import)."""
    module_name = f"examples_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


# -- PostgreSQL -----------------------------------------------------------------------------

PG_DSN_ENV: Final = "BEARER_GRPC_TEST_PG_DSN"
"""Names the PostgreSQL server of the ``postgres`` tests, e.g.
``postgresql://postgres@127.0.0.1:5432/test``; without it they are skipped."""


def pg_dsn() -> str:
    """The PostgreSQL DSN from the environment, or skip the test."""
    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn:
        pytest.skip(f"{PG_DSN_ENV} not set")
    return dsn


@contextmanager
def pg_schema_url(dsn: str) -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema (selected by the URL's
    ``options=-csearch_path=...``), dropped on exit."""
    import psycopg
    from psycopg import sql

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        separator = "&" if "?" in dsn else "?"
        yield f"{dsn}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
