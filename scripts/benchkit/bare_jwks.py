"""A bare JWKS endpoint on aiohttp, the library of the HTTP face: the same body and
headers as ``GET /jwks`` (read from stdin as JSON), with nothing else on the path.

    python -m benchkit.bare_jwks     # prints "PORT n", stops when stdin closes
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web


async def main() -> None:
    """Serve until stdin closes."""
    given = json.loads(sys.stdin.readline())
    body = given["body"].encode()
    headers = {"ETag": given["etag"], "Cache-Control": given["cache_control"]}

    async def jwks(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers=headers)

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
