"""Request bodies: JSON, uploaded files (multipart/form-data or a raw body), text.

Size first, then type:

- a body whose ``Content-Length`` is over the limit is refused (413) before a byte of it is
  read; one without a length (chunked) is read through a capped stream and refused as soon
  as it passes the limit, so an upload never fills memory;
- a file's type is judged by its first bytes (magic numbers), not by its name or the
  type the client declares: JPEG for photos, PDF or JPEG for proof (415 otherwise).
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from dataclasses import dataclass

from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.http import parse_options_header

from services.gateway.errors import ApiError

KIB, MIB = 1024, 1024 * 1024
MAX_JSON = 1 * MIB
MAX_PHOTO = 200 * KIB  # the account service's limit for a 295×413 JPEG
MAX_PROOF_FILE = 5 * MIB  # registration's limit per proof file
MAX_PROOF_FILES = 5
MAX_CSV = 10 * MIB
MAX_YAML = 200_000  # characters, registration's limit for a session document
MAX_NESTING = 32  # levels of objects/arrays in a JSON body (ours need fewer than 6)
_TOO_DEEP = object()
FORM_OVERHEAD = 64 * KIB  # multipart boundaries and part headers

JPEG, PDF = "image/jpeg", "application/pdf"
_MAGIC = ((b"\xff\xd8\xff", JPEG), (b"%PDF-", PDF))
_NAME_SAFE = re.compile(r"[^\w.\- ()\u4e00-\u9fff]+")


@dataclass(frozen=True)
class Upload:
    name: str
    content_type: str  # as sniffed from the bytes
    data: bytes

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def sniff(data: bytes) -> str | None:
    """The file type its first bytes announce (JPEG or PDF), else None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def media_type(request) -> str:
    return (request.mimetype or "").lower()


def _too_large(limit: int, what: str) -> ApiError:
    return ApiError("too_large", f"The {what} is too large: at most {_size(limit)}.")


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB"


def read_body(request, limit: int, what: str = "request body") -> bytes:
    """The raw body, at most ``limit`` bytes: 413 from the declared length before reading,
    or as soon as the stream passes the limit."""
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit, what)
    request.max_content_length = limit
    try:
        stream = request.stream
        chunks, total = [], 0
        while True:
            chunk = stream.read(min(64 * KIB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large(limit, what)
    except RequestEntityTooLarge:
        raise _too_large(limit, what) from None
    except ClientDisconnected:
        raise ApiError("validation_failed", "The request body ended early.") from None
    return b"".join(chunks)


def read_json(request, limit: int = MAX_JSON) -> dict:
    """A JSON object body (``Content-Type: application/json``)."""
    if media_type(request) != "application/json" and not media_type(request).endswith("+json"):
        raise ApiError("unsupported_media_type", "Send the body as JSON "
                       "(Content-Type: application/json).")
    raw = read_body(request, limit)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError("validation_failed", "The body is not valid JSON.",
                       {"_body": "not valid JSON"}) from None
    except RecursionError:  # nested past what the parser can follow
        data = _TOO_DEEP
    if data is _TOO_DEEP or nesting_depth(data) > MAX_NESTING:
        raise ApiError("validation_failed", f"The body is nested too deeply: at most "
                       f"{MAX_NESTING} levels of objects and arrays.",
                       {"_body": f"nested more than {MAX_NESTING} levels deep"})
    if not isinstance(data, dict):
        raise ApiError("validation_failed", "The body must be a JSON object.",
                       {"_body": "expected an object"})
    return data


def nesting_depth(value) -> int:
    """How many levels of objects/arrays ``value`` has (0 for a scalar); without recursion,
    so a hostile body cannot exhaust the stack here."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_NESTING:  # enough to refuse: stop walking
            return deepest
        todo.extend((child, level + 1) for child in children)
    return deepest


def _form(request, limit: int, what: str):
    """Parse a multipart form with the size cap in place (werkzeug spools big parts to disk)."""
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit, what)
    request.max_content_length = limit
    request.max_form_memory_size = 64 * KIB  # plain (non-file) fields
    try:
        return request.form, request.files
    except RequestEntityTooLarge:
        raise _too_large(limit, what) from None
    except HTTPException:
        raise ApiError("validation_failed", "The form could not be read.",
                       {"_body": "not a valid multipart/form-data body"}) from None


def _clean_name(name: str | None, default: str) -> str:
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = _NAME_SAFE.sub("_", name).strip(" .")[:100]
    return name or default


def _raw_name(request, default: str) -> str:
    """A raw body's file name: ``?filename=`` or ``Content-Disposition: ...; filename=``."""
    name = request.args.get("filename")
    if not name:
        disposition = request.headers.get("Content-Disposition") or ""
        _, options = parse_options_header(disposition)
        name = options.get("filename")
    return _clean_name(name, default)


def read_files(request, *, field: str, allowed: tuple[str, ...], max_file: int, max_files: int,
               what: str, default_name: str) -> list[Upload]:
    """Uploaded files, from a multipart form (every part named ``field``) or from a raw body
    whose Content-Type is one of ``allowed``. Each file is checked by its magic bytes."""
    kind = media_type(request)
    limit = max_file * max_files + FORM_OVERHEAD
    if kind == "multipart/form-data":
        _, files = _form(request, limit, what)
        parts = files.getlist(field)
        if not parts:
            raise ApiError("validation_failed", f"Attach the {what} as the form field "
                           f"{field!r}.", {field: "missing"})
        if len(parts) > max_files:
            raise ApiError("validation_failed", f"At most {max_files} files at once.",
                           {field: f"at most {max_files} files"})
        uploads = []
        for i, part in enumerate(parts, 1):
            data = part.stream.read(max_file + 1)
            if len(data) > max_file:
                raise _too_large(max_file, what)
            uploads.append(_checked(data, _clean_name(part.filename, f"{default_name}-{i}"),
                                    allowed, what))
        return uploads
    if kind in allowed:
        data = read_body(request, max_file, what)
        return [_checked(data, _raw_name(request, default_name), allowed, what)]
    raise ApiError("unsupported_media_type", f"Send the {what} as multipart/form-data (field "
                   f"{field!r}) or as the body with Content-Type {' or '.join(allowed)}.")


def _checked(data: bytes, name: str, allowed: tuple[str, ...], what: str) -> Upload:
    if not data:
        raise ApiError("validation_failed", f"The {what} is empty.", {"file": "empty"})
    kind = sniff(data)
    if kind not in allowed:
        names = " or ".join("JPEG" if a == JPEG else "PDF" for a in allowed)
        raise ApiError("unsupported_media_type",
                       f"The {what} must be a {names} file; {name!r} is not one.")
    return Upload(name=name, content_type=kind, data=data)


def read_text_file(request, *, field: str, kinds: tuple[str, ...], limit: int, what: str,
                   default_name: str) -> tuple[str, str]:
    """An uploaded text file (CSV, YAML): from a multipart form field or a raw body of one of
    ``kinds``. Must be UTF-8 text (a BOM is dropped); binary files (an Excel workbook, a
    PDF, an image) are refused 415. Returns ``(name, text)``."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        _, files = _form(request, limit + FORM_OVERHEAD, what)
        part = files.get(field)
        if part is None:
            raise ApiError("validation_failed", f"Attach the {what} as the form field "
                           f"{field!r}.", {field: "missing"})
        data = part.stream.read(limit + 1)
        if len(data) > limit:
            raise _too_large(limit, what)
        name = _clean_name(part.filename, default_name)
    elif kind in kinds:
        data = read_body(request, limit, what)
        name = _raw_name(request, default_name)
    else:
        raise ApiError("unsupported_media_type", f"Send the {what} as multipart/form-data "
                       f"(field {field!r}) or as the body with Content-Type {' or '.join(kinds)}.")
    return name, decode_text(data, what)


def decode_text(data: bytes, what: str) -> str:
    if data.startswith(b"PK\x03\x04") or sniff(data) or b"\x00" in data:
        raise ApiError("unsupported_media_type", f"The {what} must be a UTF-8 text file "
                       "(a spreadsheet must be saved as CSV first).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError("unsupported_media_type", f"The {what} is not UTF-8 text; save it "
                       "as UTF-8 (CSV UTF-8).") from None
    if not text.strip():
        raise ApiError("validation_failed", f"The {what} is empty.", {"file": "empty"})
    return text
