"""Driver errors turned into the store's exception tree, with messages free of secrets.

SQLAlchemy and driver errors become :class:`StoreUnavailable` (cannot connect, locked,
I/O, deadlock: retry later), :class:`AlreadyExists` (unique violation) or
:class:`StoreError`, chained with ``from err``. Messages are terse and never contain the
URL or statement parameters (the engines are built with ``hide_parameters=True``); what
a driver's error means is the dialect's to say.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from bearer_grpc.store._dialect import Dialect
from bearer_grpc.store._errors import AlreadyExists, StoreError, StoreUnavailable


@contextmanager
def translated_errors(dialect: Dialect, conflict: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver errors raised inside the block into the store's exception tree.

    Args:
        dialect: The database's dialect, which recognises its driver's errors.
        conflict: The message of :class:`AlreadyExists` should a unique key be violated.
    """
    try:
        yield
    except exc.IntegrityError as err:
        if dialect.is_unique_violation(err.orig):
            raise AlreadyExists(conflict) from err
        raise StoreError(f"{dialect.name} store rejected the change: constraint violated") from err
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as err:
        raise StoreUnavailable(
            f"{dialect.name} store unavailable: {_reason(dialect, err)}"
        ) from err
    except exc.DBAPIError as err:
        if err.connection_invalidated:
            raise StoreUnavailable(f"{dialect.name} store unavailable: connection lost") from err
        raise StoreError(f"{dialect.name} store error") from err


def _reason(dialect: Dialect, err: exc.SQLAlchemyError) -> str:
    """A short, secret-free reason for an unavailable store."""
    if isinstance(err, exc.TimeoutError):
        return "no free connection in the pool"
    return dialect.unavailable_reason(getattr(err, "orig", None))
