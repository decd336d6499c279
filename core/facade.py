"""Lazy package facades (PEP 562): a package lists its public names, one a line, and each
is imported from its module on first use, so `import core` and `python -m core --help` load
no torch, FAISS or pydicom.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any],
                                                                Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a package whose public `names` map to submodules.

    Args:
        package: the package's `__name__`.
        names: public name -> submodule (relative to the package) that defines it.
    """
    def __getattr__(name: str) -> Any:
        try:
            module = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
