"""The store's exceptions: every store failure is a :class:`StoreError`.

::

    StoreError              the store refused or failed; nothing is known to be written
    ├── StoreUnavailable    cannot connect, locked, I/O, deadlock: retry later
    └── AlreadyExists       a row with that key exists already

``_translate`` turns driver errors into these.
"""


class StoreError(Exception):
    """Base of store failures."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked; nothing was written. Retry later."""


class AlreadyExists(StoreError):
    """A row with that key exists already."""
