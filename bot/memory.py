"""How the C allocator hands memory to a long-running bot process.

asyncio reads every socket with ``recv(256 KiB)`` and shrinks the buffer to what arrived.
glibc serves a request that large with its own ``mmap``, until a freed ``mmap`` chunk bigger
than its threshold raises the threshold to that chunk's size (its "dynamic" threshold). From
then on every read takes 256 KiB from the heap and keeps a small piece of it, so the heap grows
with free holes between live pieces: under a steady load the resident size of ``troupe run``
kept rising about 1 MiB per 200 turns with the live memory flat (``bench/soak.py``).
Fixing the threshold keeps those buffers out of the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["MMAP_THRESHOLD", "pin_mmap_threshold"]

#: glibc's own initial threshold: requests this large or larger get a mapping of their own.
MMAP_THRESHOLD = 128 * 1024
#: ``M_MMAP_THRESHOLD`` in glibc's ``malloc.h``.
_M_MMAP_THRESHOLD = -3


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` for this process.

    Returns ``False``, changing nothing, where the C library is not glibc."""
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    libc = ctypes.CDLL(path)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl, macOS: no dynamic threshold
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
