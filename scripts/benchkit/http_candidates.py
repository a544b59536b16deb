"""How the HTTP face's server library was chosen: aiohttp against uvicorn (httptools).

Each candidate serves, in a process of its own, the same two endpoints on one
``TokenAuthority`` (SQLite in a temporary directory): ``POST /bare`` parses a form and
answers a small JSON object; ``POST /token`` reads client credentials from the form and
issues a real token (``TokenAuthority.issue_async``, as both faces of the TokenService
do). One aiohttp client drives each in a closed loop; rounds alternate the candidates
(ABBA) and the medians are quoted: requests/s, server CPU per request and the server's
resident memory after the run (VmHWM, its peak).

    scripts/bench-http-candidates            # about a minute
    scripts/bench-http-candidates --rounds 5 --seconds 4

It needs the ``bench`` extra (uvicorn and httptools are there only for this comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchkit.procs import _env, proc_cpu
from benchkit.stats import median, round_order

CANDIDATES = ("aiohttp", "uvicorn")
CONCURRENCY = 16


def _serve(candidate: str, data_dir: str) -> None:  # runs in the server process
    import urllib.parse

    from bearer_grpc.service.authority import TokenAuthority
    from bearer_grpc.service.grants import ClientCredentialsGrant
    from bearer_grpc.store import open_store, sqlite_url

    authority = TokenAuthority(open_store(sqlite_url(Path(data_dir))))
    authority.start()

    async def answer(path: str, body: bytes) -> bytes:
        form = urllib.parse.parse_qs(body.decode("ascii"), strict_parsing=True)
        if path == "/bare":
            return json.dumps({"ok": True, "n": len(form)}).encode()
        grant = ClientCredentialsGrant(form["client_id"][0], form["client_secret"][0])
        issued = await authority.issue_async(grant)
        return json.dumps(
            {"access_token": issued.access.token, "token_type": "Bearer", "expires_in": 900}
        ).encode()

    async def main() -> None:
        if candidate == "aiohttp":
            from aiohttp import web

            async def handle(request: web.Request) -> web.Response:
                body = await request.read()
                return web.Response(
                    body=await answer(request.path, body), content_type="application/json"
                )

            app = web.Application()
            app.router.add_post("/bare", handle)
            app.router.add_post("/token", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
        else:
            import uvicorn

            async def asgi(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
                if scope["type"] != "http":
                    return
                body = b""
                while True:
                    message = await receive()
                    body += message.get("body", b"")
                    if not message.get("more_body"):
                        break
                payload = await answer(scope["path"], body)
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": payload})

            config = uvicorn.Config(
                asgi, host="127.0.0.1", port=0, http="httptools", access_log=False, lifespan="off"
            )
            server = uvicorn.Server(config)
            config.load()  # what Server.serve() does, without taking the signal handlers
            server.lifespan = config.lifespan_class(config)
            await server.startup()
            port = server.servers[0].sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _load(port: int, path: str, body: bytes, pid: int, seconds: float) -> tuple[float, float]:
    import aiohttp

    headers = {"content-type": "application/x-www-form-urlencoded"}
    url = f"http://127.0.0.1:{port}{path}"
    count = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(end: float) -> None:
            nonlocal count
            while time.perf_counter() < end:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{path}: HTTP {response.status}")
                count += 1

        await asyncio.gather(*(worker(time.perf_counter() + 0.5) for _ in range(CONCURRENCY)))
        count, cpu0, began = 0, proc_cpu(pid) or 0.0, time.perf_counter()
        await asyncio.gather(*(worker(began + seconds) for _ in range(CONCURRENCY)))
        wall, cpu = time.perf_counter() - began, (proc_cpu(pid) or 0.0) - cpu0
    return count / wall, cpu / count * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    """Run the comparison and print one table."""
    parser = argparse.ArgumentParser(prog="bench-http-candidates", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(*args.serve)
        return
    from benchkit.tokenservice import add_client, sqlite_store

    with sqlite_store() as store:
        client = add_client(store)
        data_dir = store.args[1]
        body = f"grant_type=client_credentials&client_id={client.client_id}"
        body += f"&client_secret={client.client_secret}"
        procs = {}
        for name in CANDIDATES:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchkit.http_candidates", "--serve", name, data_dir],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=_env(),
            )
            assert proc.stdout is not None
            procs[name] = (proc, int(proc.stdout.readline().split()[1]))
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        try:
            for index in range(args.rounds):
                for name in round_order(CANDIDATES, index):
                    proc, port = procs[name]
                    for path, payload in (("/bare", b"a=1&b=2"), ("/token", body.encode())):
                        measured = asyncio.run(_load(port, path, payload, proc.pid, args.seconds))
                        results.setdefault((name, path), []).append(measured)
            rss = {name: _rss_peak_kib(proc.pid) for name, (proc, _) in procs.items()}
        finally:
            for proc, _ in procs.values():
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(10)
    print(f"{'candidate':<10} {'endpoint':<8} {'req/s':>8} {'server µs/req':>14} {'peak RSS':>9}")
    for (name, path), values in sorted(results.items()):
        rate = median(v[0] for v in values)
        cpu = median(v[1] for v in values)
        print(f"{name:<10} {path:<8} {rate:>8.0f} {cpu:>14.0f} {rss[name] / 1024:>7.1f}MB")
    for path in ("/bare", "/token"):
        pairs = zip(results["aiohttp", path], results["uvicorn", path], strict=True)
        ratio = [a[0] / u[0] for a, u in pairs]
        print(f"aiohttp/uvicorn req/s on {path}: median {median(ratio):.2f}x")


if __name__ == "__main__":
    main()
