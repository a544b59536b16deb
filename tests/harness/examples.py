"""The example modules of examples/, loaded in this process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
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
