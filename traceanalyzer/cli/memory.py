"""The command's allocator setting (the process is ours; a notebook keeps its own).

glibc keeps freed blocks of up to 32 MB in its heap once its adaptive mmap threshold has
grown, and a heap fragmented by the reader's per-chunk arrays is not given back: a 10M-event
ETL left ~300 MB of such free heap that Arrow (its own allocator) could not reuse. Blocks
from 256 KiB up get their own mapping instead, returned to the system when freed.
"""

from __future__ import annotations

import ctypes
import sys

#: Blocks at least this big are mapped on their own (glibc ``M_MMAP_THRESHOLD``).
MMAP_THRESHOLD = 256 * 1024
_M_MMAP_THRESHOLD = -3


def return_big_blocks() -> bool:
    """Ask glibc to map big blocks on their own; False where there is no ``mallopt``."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
