"""A bounded memo for the hot path: recent values by their key text, the oldest dropped first.

Why not ``functools.lru_cache``: the callers decide *when* a value may be kept (a token's parse
only once its signature verified; a session only with the key set that opened it), and bound the
key's size as well as the count, since keys are what callers send. Reads and writes are plain dict
operations (atomic under the GIL); dropping the oldest tolerates another thread changing the dict.
"""

from __future__ import annotations

import contextlib
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedMemo(Generic[V]):
    def __init__(self, max_entries: int, max_key_chars: int) -> None:
        self.max_entries, self.max_key_chars = max_entries, max_key_chars
        self._entries: dict[str, V] = {}

    def get(self, key: str) -> V | None:
        return self._entries.get(key)

    def put(self, key: str, value: V) -> None:
        """Keep ``value`` unless ``key`` is longer than ``max_key_chars`` (then nothing is kept)."""
        if len(key) > self.max_key_chars:
            return
        if len(self._entries) >= self.max_entries:
            with contextlib.suppress(RuntimeError, StopIteration, KeyError):  # another thread changed it
                self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
