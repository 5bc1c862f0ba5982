"""A bounded, thread-safe memo of values that depend only on their key.

The estimator keeps per-configuration facts here between predictions. What is stored is a
pure function of the key and the fitted model, so a memo's presence or contents can never
change a result: it only saves recomputation. It is not pickled.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Hashable, Sequence, TypeVar

V = TypeVar("V")


class BoundedMemo:
    """Least-recently-used store of at most ``size`` values.

    ``get_many(keys, compute)`` returns the values for ``keys`` in order, calling
    ``compute(missing_positions)`` once for those not stored; ``compute`` runs outside the
    lock (two threads may compute the same key; both get equal values).
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("size must be at least 1.")
        self.size = size
        self._store: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._store)

    def get_many(self, keys: Sequence[Hashable], compute: Callable[[list[int]], Sequence[V]]) -> list[V]:
        with self._lock:
            found = {i: self._store[k] for i, k in enumerate(keys) if k in self._store}
        missing = [i for i in range(len(keys)) if i not in found]
        if missing:
            for i, value in zip(missing, compute(missing)):
                found[i] = value
        with self._lock:
            for i, key in enumerate(keys):
                self._store[key] = found[i]
                self._store.move_to_end(key)
            while len(self._store) > self.size:
                self._store.popitem(last=False)
        return [found[i] for i in range(len(keys))]
