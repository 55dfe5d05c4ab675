"""The marshmallow field every free-text input crosses a boundary with."""

import unicodedata

from marshmallow import ValidationError, fields, validate


class Text(fields.String):
    """A string: NFC, stripped (unless ``strip=False``), no control characters, bounded."""

    def __init__(self, *, max_length, min_length=1, strip=True, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.min_length, self.strip = max_length, min_length, strip

    def _deserialize(self, value, attr, data, **kwargs):
        s = unicodedata.normalize("NFC", super()._deserialize(value, attr, data, **kwargs))
        if self.strip:
            s = s.strip()
        # Cc: controls (tab, newline, NUL); Cf: invisible formatting (zero-width, bidi overrides)
        if any(unicodedata.category(c) in ("Cc", "Cf") for c in s):
            raise ValidationError("must not contain control or invisible formatting characters")
        if len(s) > self.max_length:
            raise ValidationError(f"must be at most {self.max_length} characters")
        if len(s) < self.min_length:
            raise ValidationError(
                "must not be blank"
                if self.min_length == 1
                else f"must be at least {self.min_length} characters"
            )
        return s


def account_ids():
    """An optional list of account ids: a session's counts of only these candidates (a demo
    tells its own candidates from people trying the site beside it)."""
    return fields.List(Text(max_length=100), allow_none=True, load_default=None,
                       validate=validate.Length(max=100_000))


# -- replies: values as a service sends them (already JSON: times and dates as text) --------


class Instant(fields.String):
    """A time with its zone as sent (ISO 8601)."""

    json_schema = {"format": "date-time"}


class Day(fields.String):
    """A calendar date as sent (ISO 8601, ``YYYY-MM-DD``)."""

    json_schema = {"format": "date"}


def nullable(field_cls, *args, **kwargs):
    """A reply's field that is always there and may be null."""
    return field_cls(*args, required=True, allow_none=True, **kwargs)


class LocalTime(fields.String):
    """A time as Shanghai's clocks show it, for people to read (``2026-04-07 10:30:00``)."""
