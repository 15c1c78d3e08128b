"""The stage entry returns large freed buffers (frames, PCM, tensors) to the OS."""

from __future__ import annotations

import subprocess
import sys

# In a fresh interpreter: free a 4 MB block (which raises glibc's dynamic mmap
# threshold to 4 MB), then count mmapped chunks around a 1 MB allocation.
PROBE = """
import ctypes, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    from services.common.entry import return_large_buffers_to_the_os
    return_large_buffers_to_the_os()
big = bytearray(4 * 1024 * 1024)
del big
before = libc.mallinfo2().hblks
frame = bytearray(1024 * 1024)
print(libc.mallinfo2().hblks - before)
"""


def mmapped_chunks_for_a_frame(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, check=True, timeout=60
    )
    return int(done.stdout)


def test_a_frame_sized_buffer_is_mmapped_after_a_larger_one_was_freed() -> None:
    assert mmapped_chunks_for_a_frame("default") == 0  # glibc keeps it in the heap
    assert mmapped_chunks_for_a_frame("fixed") == 1
