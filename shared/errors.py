"""Errors that cross a service boundary.

Every refusal a caller can act on is a ``KaowuError``: it carries a stable ``code``, a
human ``message`` and, for bad input, ``fields`` (field -> message). The classes are
registered with nameko's ``deserialize_to_instance`` so an RPC caller gets the same class
back, not a ``RemoteError`` with a traceback in it.
"""

from nameko.exceptions import deserialize_to_instance


class KaowuError(Exception):
    code = "error"

    def __init__(self, message, fields=None, code=None):
        # args are what nameko serializes over RPC: keep them JSON-plain
        super().__init__(message, fields or {}, code or self.code)

    @property
    def message(self):
        return self.args[0]

    @property
    def fields(self):
        return self.args[1]

    @property
    def error_code(self):
        return self.args[2]

    def to_dict(self):
        out = {"code": self.error_code, "message": self.message}
        if self.fields:
            out["fields"] = self.fields
        return out

    def __str__(self):
        if self.fields:
            return f"{self.message} {self.fields}"
        return self.message


def flat_fields(messages) -> dict:
    """Nested field messages (marshmallow's) as ``{"a.0.b": "message"}``: dotted paths,
    a list of strings joined into one, so every caller sees one shape."""
    out = {}

    def walk(prefix, node):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, list | tuple) and node and all(isinstance(x, str) for x in node):
            out[prefix or "_schema"] = " ".join(node)
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(f"{prefix}.{i}", v)
        else:
            out[prefix or "_schema"] = str(node)

    walk("", messages)
    return out


@deserialize_to_instance
class ValidationFailed(KaowuError):
    """Bad input: ``fields`` says which field and why. Nothing was written."""

    code = "invalid"


@deserialize_to_instance
class Refused(KaowuError):
    """Well-formed, but the rules say no (a window is closed, a duplicate, a wrong state)."""

    code = "refused"


@deserialize_to_instance
class NotFound(KaowuError):
    code = "not_found"


@deserialize_to_instance
class Unauthorized(KaowuError):
    """Credentials wrong, account locked, or the caller may not do this."""

    code = "unauthorized"


@deserialize_to_instance
class Conflict(KaowuError):
    """Someone else changed the same thing first and retries ran out; try again."""

    code = "conflict"


@deserialize_to_instance
class Unavailable(KaowuError):
    """A moment's outage (the database restarting, its connection lost, the pool full):
    nothing was done, or what was done is whole; the same call again shortly can succeed."""

    code = "unavailable"


EXPECTED = (ValidationFailed, Refused, NotFound, Unauthorized, Conflict, Unavailable)
