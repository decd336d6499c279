"""Decoded images kept in memory for the pages, bounded in bytes rather than in entries.

Streamlit's caches bound themselves by a number of entries, whatever each one weighs: 8
uploads of 64 MP DICOM held 4 GB after their sessions closed. Here every page's decoded
images (Search uploads and dataset picks, the Duplicates pair) share one pool, IMAGE_CACHE,
of at most IMAGE_CACHE_BYTES; the least recently used go first, and a value bigger than the
whole pool is returned without being kept. Values are shared between sessions, not copied:
callers must not change them in place (as for `st.cache_resource`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import numpy as np

# A decoded image is at most MAX_SIDE square: 16 MB of float32 pixels, twice that for DICOM
# (pixels and modality values), so the pool holds at least 16 of the largest.
IMAGE_CACHE_BYTES = 512 * 2**20

T = TypeVar("T")


def nbytes(value: object) -> int:
    """About how many bytes `value` holds: arrays, bytes and strings, through dataclasses,
    mappings and sequences (an object reached twice counts once).

    Args:
        value: what a cached function returned.

    Returns:
        Bytes, at least sys.getsizeof for anything else.
    """
    seen: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, np.ndarray):
            total += v.nbytes
        elif isinstance(v, bytes | bytearray | memoryview | str):
            total += sys.getsizeof(v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend(getattr(v, f.name) for f in dataclasses.fields(v))
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend(v)
        else:
            total += sys.getsizeof(v)
    return total


class ByteBoundedCache:
    """A thread-safe least-recently-used cache holding at most `max_bytes` (see `nbytes`).

    Args:
        max_bytes: the bound on the bytes of the values kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes_held(self) -> int:
        """The bytes of the values kept now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], T],
                       busy: Callable[[], AbstractContextManager[Any]] | None = None) -> T:
        """The value kept under `key`, else `compute()` (inside `busy()`, e.g. a spinner),
        kept if it fits. An exception from `compute` is raised and nothing is kept.

        Returns:
            The value.
        """
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]  # type: ignore[return-value]
        if busy is None:
            value = compute()
        else:
            with busy():
                value = compute()
        self._put(key, value)
        return value

    def memoize(self, fn: Callable[..., T] | None = None, *,
                busy: Callable[[], AbstractContextManager[Any]] | None = None) -> Any:
        """Decorator: `fn`'s results kept here, keyed by its name and arguments (bytes
        arguments by their digest, so an upload's bytes are not kept by its key).

        Args:
            fn: the function (arguments hashable, or bytes).
            busy: a context manager factory entered while computing (st.spinner).
        """
        def wrap(f: Callable[..., T]) -> Callable[..., T]:
            name = f"{f.__module__}.{f.__qualname__}"

            @functools.wraps(f)
            def call(*args: Any, **kwargs: Any) -> T:
                key = (name, _key(args), _key(tuple(sorted(kwargs.items()))))
                return self.get_or_compute(key, lambda: f(*args, **kwargs), busy)

            call.cache = self  # type: ignore[attr-defined]
            return call

        return wrap(fn) if fn is not None else wrap

    def _put(self, key: Hashable, value: object) -> None:
        size = nbytes(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped


def _key(values: tuple[Any, ...]) -> tuple[Hashable, ...]:
    """`values` with bytes replaced by (length, digest)."""
    out: list[Hashable] = []
    for v in values:
        if isinstance(v, tuple):
            out.append(_key(v))
        elif isinstance(v, bytes | bytearray | memoryview):
            out.append(("bytes", len(v), hashlib.blake2b(v, digest_size=16).digest()))
        else:
            out.append(v)
    return tuple(out)


IMAGE_CACHE = ByteBoundedCache(IMAGE_CACHE_BYTES)
