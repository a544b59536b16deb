"""``python -m benchkit`` (with ``scripts/`` on the path): see :mod:`benchkit.cli`."""

from benchkit.cli import main

main()
