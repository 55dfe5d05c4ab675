"""structlog JSON logs. Personal data (ID numbers, mobiles) never appears whole.

Masking happens in a processor, so it covers every log line whatever a caller passes: keys
known to hold personal data are masked, and any string value is scrubbed of anything
shaped like a mainland ID number or mobile number.
"""

import logging
import os
import re
import sys

import structlog

_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{3})\d{12,13}([0-9Xx]{2})(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_SECRET_KEYS = {"password", "old_password", "new_password", "password_hash", "token", "secret"}
_PII_KEYS = {"id_number", "mobile", "phone"}


def mask_text(s: str) -> str:
    s = _ID_RE.sub(lambda m: f"{m.group(1)}{'*' * 11}{m.group(2)}", s)
    return _MOBILE_RE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", s)


def mask_value(key, value):
    if key in _SECRET_KEYS:
        return "***"
    if key in _PII_KEYS and isinstance(value, str):
        return value[:3] + "*" * max(len(value) - 5, 0) + value[-2:] if len(value) > 5 else "***"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    return value


def _mask_processor(_logger, _name, event_dict):
    return {k: mask_value(k, v) for k, v in event_dict.items()}


_configured = False


def configure(service: str | None = None, level: str | None = None, stream=None):
    """Idempotent; every service process calls it at start."""
    global _configured
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_processor,
        structlog.processors.JSONRenderer(ensure_ascii=False),
    ]
    # nameko's, kombu's and SQLAlchemy's own lines: the same JSON, the same masking
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(ensure_ascii=False),
        foreign_pre_chain=processors[:-1]))
    # nameko logs each refusal a caller can act on with a traceback; ``call.refused`` from
    # shared.dependencies.WorkerLog says it in one line, so those are dropped here
    handler.addFilter(lambda record: not (record.name == "nameko.containers"
                                          and record.getMessage().startswith("(expected)")))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name, logging.INFO))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    _configured = True


def configured() -> bool:
    return _configured


def get_logger(name=None):
    if not _configured:
        configure()
    return structlog.get_logger(name)
