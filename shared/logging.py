"""structlog JSON logs. Personal data (ID numbers, mobiles, e-mail and postal addresses)
never appears whole.

Masking happens in a processor, so it covers every log line whatever a caller passes, by
the one rule of ``shared.masking`` (the same as the operators' views): keys known to hold
personal data are masked, and any string value is scrubbed of anything shaped like a
mainland ID number, a mobile number or an e-mail address.
"""

import logging
import os
import sys

import structlog

from shared.masking import mask, mask_text

__all__ = ["configure", "configured", "get_logger", "mask_text", "mask_value"]


def mask_value(key, value):
    """``value`` as it would be logged under ``key`` (``shared.masking.mask``)."""
    return mask(value, key)


def _mask_processor(_logger, _name, event_dict):
    return {k: mask(v, k) for k, v in event_dict.items()}


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
