"""bearer_grpc for ``grpc.aio``: the same names as :mod:`bearer_grpc`, asyncio flavoured."""

from bearer_grpc.aio._verifier import Verifier

__all__ = ["Verifier"]
