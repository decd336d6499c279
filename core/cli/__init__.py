"""`python -m core ...`: one parser, one place that turns a `UserError` into one line."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "build_parser": "main",
    "main": "main",
})

__all__ = [
    "build_parser",
    "main",
]
