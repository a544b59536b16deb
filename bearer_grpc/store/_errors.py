"""The store's exceptions, defined with the library's one exception tree.

::

    StoreError              the store refused or failed; nothing is known to be written
    ├── StoreUnavailable    cannot connect, locked, I/O, deadlock: retry later
    └── AlreadyExists       a row with that key exists already

They derive from :class:`~bearer_grpc.core.errors.BearerGrpcError` and are defined in
:mod:`bearer_grpc.core.errors`; ``_translate`` turns driver errors into them.
"""

from bearer_grpc.core.errors import AlreadyExists, StoreError, StoreUnavailable

__all__ = ["AlreadyExists", "StoreError", "StoreUnavailable"]
