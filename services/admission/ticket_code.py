"""The QR code on an admission ticket (准考证二维码): what it says and how a forgery shows.

Payload: ``KWADM1|<check>|<session_id>|<ticket_number>``.

``check`` is the first 10 characters (base32, 50 bits) of HMAC-SHA256 over
``"<session_id>|<ticket_number>"`` under the admission service's secret key
(``ADMISSION_QR_KEY`` in the config). Ticket numbers follow a public format, so anyone can
make up a plausible one; without the key nobody can make its check value, so a made-up or
altered number (or session) fails ``read_payload``. The key never leaves the service;
rotating it makes printed codes unreadable, so rotate between sessions.

Pure: no I/O; the key is passed in.
"""

import base64
import hashlib
import hmac

from shared.errors import Refused

PREFIX = "KWADM1"
CHECK_LENGTH = 10


def check_value(key: bytes, session_id: str, ticket_number: str) -> str:
    mac = hmac.new(key, f"{session_id}|{ticket_number}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:CHECK_LENGTH]


def payload(key: bytes, session_id: str, ticket_number: str) -> str:
    """The text the ticket's QR code encodes."""
    return f"{PREFIX}|{check_value(key, session_id, ticket_number)}|{session_id}|{ticket_number}"


def read_payload(key: bytes, text: str) -> tuple[str, str]:
    """(session_id, ticket_number) from a scanned code; ``Refused`` if it is not a Kaowu
    admission code or its check value does not match (forged or damaged)."""
    parts = text.split("|", 3) if isinstance(text, str) else []
    if len(parts) != 4 or parts[0] != PREFIX or not parts[2] or not parts[3]:
        raise Refused("This QR code is not a Kaowu admission ticket code; type in the ticket number.",
                      {"qr": "not an admission ticket code"})
    _, check, session_id, ticket_number = parts
    if not hmac.compare_digest(check, check_value(key, session_id, ticket_number)):
        raise Refused("The QR code's check value does not match its ticket number: the ticket may be "
                      "forged or altered. Check the candidate's identity document and call the "
                      "chief invigilator.", {"qr": "check value does not match"})
    return session_id, ticket_number
