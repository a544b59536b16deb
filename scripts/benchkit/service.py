"""Section "service": the TokenService's RPC rates next to a bare echo, interleaved.

A real ``bearer-grpc serve`` (a ``grpc.aio`` server) runs in a subprocess on SQLite, and
one more on PostgreSQL when a DSN is given; a bare aio echo server runs in another. The
load generator drives, in ABBA rounds with N calls in flight each:

- ``echo``: the bare echo, with a request of the same size as the VerifyToken request;
- ``verify``: VerifyToken of one valid token (SQLite service);
- ``issue_sqlite`` / ``issue_postgresql``: IssueToken with client credentials.

The ratio VerifyToken / bare echo is taken per round, then medianed. Each row also has the
server's CPU per call, and how much of it its main thread (the event loop) used: the rest
is worker threads (the store) and gRPC's own threads.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict
from typing import Any

from bearer_grpc.v1 import token_service_pb2 as pb
from benchkit import procs, tokenservice
from benchkit.echo_server import METHOD as ECHO_METHOD
from benchkit.load import Load, Window, checked, measure
from benchkit.stats import median, ratios, round_order

VERIFY = f"{tokenservice.SERVICE_PATH}/VerifyToken"
ISSUE = f"{tokenservice.SERVICE_PATH}/IssueToken"
LABELS = {
    "echo": "bare aio echo (same request size)",
    "verify": "VerifyToken (SQLite service)",
    "issue_sqlite": "IssueToken, client credentials, SQLite",
    "issue_postgresql": "IssueToken, client credentials, PostgreSQL",
}


def _no_metadata(_index: int) -> None:
    return None


async def run(settings: dict[str, Any], pg_dsn: str | None, progress: bool) -> dict[str, Any]:
    """Measure the service RPCs; return the "service" section."""
    with contextlib.ExitStack() as stack:
        loads: dict[str, Load] = {}
        sqlite = stack.enter_context(tokenservice.sqlite_store())
        stores = [("sqlite", sqlite)]
        if pg_dsn:
            stores.append(("postgresql", stack.enter_context(tokenservice.pg_store(pg_dsn))))
        verify_request = b""
        for key, store in stores:
            client = tokenservice.add_client(store)
            [server] = stack.enter_context(tokenservice.serving(store))
            issue = client.issue_request().SerializeToString()
            loads[f"issue_{key}"] = Load(server.target, ISSUE, issue, _no_metadata, server.proc.pid)
            if key == "sqlite":
                [token] = tokenservice.issue_tokens(server.target, client, 1)
                request = pb.VerifyTokenRequest(token=token, audience=tokenservice.AUDIENCE)
                with tokenservice.stub(server.target) as stub:
                    if not stub.VerifyToken(request, timeout=10).active:
                        raise SystemExit("VerifyToken refused a token the service just issued")
                verify_request = request.SerializeToString()
                loads["verify"] = Load(
                    server.target, VERIFY, verify_request, _no_metadata, server.proc.pid
                )
        config: dict[str, Any] = {"name": "service", "flavour": "aio", "variants": ["bare"]}
        config.update(jwks={}, issuer="", audience="")
        [echo] = stack.enter_context(procs.running(procs.start_echo_servers([config])))
        loads["echo"] = Load(echo.target, ECHO_METHOD, verify_request, _no_metadata, echo.proc.pid)
        order = [name for name in LABELS if name in loads]
        results: dict[str, list[Window]] = {name: [] for name in order}
        concurrency = settings["concurrency"]
        for index in range(settings["rounds"]):
            for name in round_order(order, index):
                window = await measure(
                    loads[name], concurrency, settings["warmup"], settings["seconds"]
                )
                results[name].append(checked(name, window))
                if progress:
                    print(
                        f"  service round {index + 1}/{settings['rounds']} {name:<16} "
                        f"{window.calls_per_s:8,.0f} calls/s",
                        file=sys.stderr,
                        flush=True,
                    )
    return summarize(results)


def summarize(results: dict[str, list[Window]]) -> dict[str, Any]:
    """Medians, and ratios to the bare echo per round."""
    echo = [w.calls_per_s for w in results["echo"]]
    section: dict[str, Any] = {"postgresql": "issue_postgresql" in results}
    for name, windows in results.items():
        rates = [w.calls_per_s for w in windows]
        section[name] = {
            "label": LABELS[name],
            "calls_per_s": median(rates),
            "p50_ms": median(w.p50_ms for w in windows),
            "p99_ms": median(w.p99_ms for w in windows),
            "server_cpu_us": median(
                w.server_cpu_us for w in windows if w.server_cpu_us is not None
            ),
            "server_main_cpu_us": median(
                w.server_main_cpu_us for w in windows if w.server_main_cpu_us is not None
            ),
            "ratio_to_echo": median(ratios(rates, echo)),
            "ratios_to_echo": ratios(rates, echo),
            "rounds": [asdict(w) for w in windows],
        }
    return section
