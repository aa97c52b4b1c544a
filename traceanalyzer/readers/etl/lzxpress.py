"""LZXpress plain LZ77 ([MS-XCA] 2.3/2.4) into a buffer of fixed size (numba).

ETW's relogger (PerfView, WPR ``-compress``) stores a buffer's records compressed with
this format; the buffer header says how long they are once decompressed. Decompression
writes into an array of exactly that length and stops when the data would go beyond it,
so a hostile buffer (one match of length 2^32) costs at most the declared size and a
bounded number of steps: never a hang or gigabytes. :func:`decompress_into` runs
compiled; ``decompress_into.py_func`` is the same code as plain Python.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: Outcomes of :func:`decompress_into`.
OK, OVERFLOW, BAD_INPUT = 0, 1, 2


@nb.njit(cache=True)
def decompress_into(src: np.ndarray, dst: np.ndarray) -> tuple[int, int]:
    """Decompress ``src`` (uint8) into ``dst`` (uint8); returns (bytes written, outcome).

    ``OVERFLOW``: the data goes on beyond ``len(dst)`` (what fits is written).
    ``BAD_INPUT``: the input ends inside a token, or a match points before the output.
    """
    n = src.shape[0]
    cap = dst.shape[0]
    i = 0
    o = 0
    flags = np.int64(0)
    nflags = 0
    half = -1  # input position of the byte whose high nibble the next long match uses
    while i < n:
        if nflags == 0:
            if i + 4 > n:
                return o, BAD_INPUT
            flags = (np.int64(src[i]) | (np.int64(src[i + 1]) << 8) | (np.int64(src[i + 2]) << 16)
                     | (np.int64(src[i + 3]) << 24))
            i += 4
            nflags = 32
        nflags -= 1
        if ((flags >> nflags) & 1) == 0:
            if i >= n:
                break
            if o >= cap:
                return o, OVERFLOW
            dst[o] = src[i]
            o += 1
            i += 1
            continue
        if i == n:  # a match flag with no input left marks the end
            break
        if i + 2 > n:
            return o, BAD_INPUT
        match = np.int64(src[i]) | (np.int64(src[i + 1]) << 8)
        i += 2
        offset = (match >> 3) + 1
        length = match & 7
        if length == 7:
            if half < 0:
                if i >= n:
                    return o, BAD_INPUT
                half = i
                length = np.int64(src[i]) & 15
                i += 1
            else:
                length = np.int64(src[half]) >> 4
                half = -1
            if length == 15:
                if i >= n:
                    return o, BAD_INPUT
                length = np.int64(src[i])
                i += 1
                if length == 255:
                    if i + 2 > n:
                        return o, BAD_INPUT
                    length = np.int64(src[i]) | (np.int64(src[i + 1]) << 8)
                    i += 2
                    if length == 0:
                        if i + 4 > n:
                            return o, BAD_INPUT
                        length = (np.int64(src[i]) | (np.int64(src[i + 1]) << 8)
                                  | (np.int64(src[i + 2]) << 16) | (np.int64(src[i + 3]) << 24))
                        i += 4
                    if length < 22:
                        return o, BAD_INPUT
                    length -= 22
                length += 15
            length += 7
        length += 3
        if offset > o:
            return o, BAD_INPUT
        want = o + length
        stop = min(want, cap)
        while o < stop:
            dst[o] = dst[o - offset]
            o += 1
        if want > cap:
            return o, OVERFLOW
    return o, OK


def decompress(data: bytes, size: int) -> tuple[bytes, int]:
    """(at most ``size`` decompressed bytes, outcome) of ``data``."""
    out = np.empty(size, np.uint8)
    written, outcome = decompress_into(np.frombuffer(data, np.uint8), out)
    return out[:written].tobytes(), int(outcome)
