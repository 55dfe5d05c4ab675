"""Moved to ``shared.masking`` (one rule for logs, the gateway's operator routes and the
command line); kept so that older imports keep working."""

from shared.masking import mask, mask_id_number, mask_mobile, mask_text  # noqa: F401
