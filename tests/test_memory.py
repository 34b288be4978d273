"""The bot process keeps glibc's mmap threshold fixed (bot.memory)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Frees a 1 MiB block (which raises glibc's dynamic threshold to 1 MiB), then asks for
#: 256 KiB, as asyncio does on every socket read, and prints whether it got its own mapping.
_PROBE = """
import ctypes, sys
from bot.memory import pin_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "pinned":
    assert pin_mmap_threshold()
libc.free(libc.malloc(1 << 20))
mapped = libc.mallinfo2().hblks
read_buffer = libc.malloc(256 * 1024)
print(libc.mallinfo2().hblks - mapped)
"""


def _probe(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc 2.33 or later only")
def test_socket_read_buffers_stay_off_the_heap_after_a_big_free() -> None:
    # Without the pin, glibc moves the threshold up and the read buffer comes from the heap.
    assert _probe("default") == "0"
    assert _probe("pinned") == "1"
