"""The W3C Bitstring Status List (v1.0) encoding: which certificates are revoked. Pure.

A status list is a bitstring of at least 131,072 bits (16 KiB, the specification's minimum:
a list that small would tell a verifier which certificate it is checking). Bit ``i`` is the
``i``-th bit from the left: index 0 is the most significant bit of the first byte. The
``encodedList`` is the Multibase base64url (prefix ``u``, no padding) of the GZIP-compressed
bitstring. A certificate's global ``status_index`` falls into list ``index // LIST_SIZE``
at position ``index % LIST_SIZE``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterable

LIST_SIZE = 131_072  # bits
MULTIBASE_BASE64URL = "u"
MAX_LIST_BYTES = 16 * 1024 * 1024  # refuse to inflate anything bigger (a gzip bomb)


def locate(status_index: int) -> tuple[int, int]:
    """(list number, index within that list) of a certificate's ``status_index``."""
    if status_index < 0:
        raise ValueError("a status index is not negative")
    return divmod(status_index, LIST_SIZE)


def bitstring(set_bits: Iterable[int], size: int = LIST_SIZE) -> bytes:
    """``size`` bits, all 0 but the indices given (0 = leftmost bit)."""
    if size <= 0 or size % 8:
        raise ValueError("a status list is a positive whole number of bytes")
    out = bytearray(size // 8)
    for i in set_bits:
        if not 0 <= i < size:
            raise ValueError(f"index {i} is outside a list of {size} bits")
        out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


def encode(bits: bytes) -> str:
    """``encodedList``: multibase base64url (no padding) of the gzipped bitstring."""
    packed = gzip.compress(bits, compresslevel=9, mtime=0)  # mtime 0: same bits, same text
    return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode(encoded: str) -> bytes:
    """The bitstring back from ``encodedList``; ``ValueError`` if it is not one."""
    if not isinstance(encoded, str) or not encoded.startswith(MULTIBASE_BASE64URL):
        raise ValueError("an encodedList is multibase base64url: it starts with 'u'")
    body = encoded[1:]
    try:
        packed = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
        bits = inflater.decompress(packed, MAX_LIST_BYTES)
        if inflater.unconsumed_tail:
            raise ValueError("the status list is too large")
        if not inflater.eof or not bits:
            raise ValueError("the gzip stream is truncated or empty")
    except (ValueError, binascii.Error, zlib.error) as exc:
        raise ValueError(f"not a gzipped base64url bitstring: {exc}") from None
    return bits


def is_set(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise ValueError(f"index {index} is outside a list of {len(bits) * 8} bits")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def set_indices(bits: bytes) -> list[int]:
    return [n * 8 + b for n, byte in enumerate(bits) if byte for b in range(8)
            if byte & (0x80 >> b)]
