"""Verifiable Credentials of certificates and of the status list, as VC-JWT (JOSE).

W3C VC Data Model 2.0, secured per "Securing Verifiable Credentials using JOSE and COSE":
the JWT's claims *are* the credential (``@context``, ``type``, ``issuer``, ``validFrom``,
``credentialSubject``, ``credentialStatus``), with ``iss``, ``jti`` and ``iat`` beside
them; the protected header is ``{"alg": "Ed25519", "kid": <key thumbprint>, "typ": "vc+jwt",
"cty": "vc"}``, signed with Ed25519 by joserfc (RFC 9864's fully specified name; credentials
issued earlier under the deprecated ``EdDSA`` still verify). Media type ``application/vc+jwt``.

Pure but for the signature arithmetic: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

import base64
import binascii
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import orjson
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet, OKPKey

from services.certificate import domain, statuslist
from shared.clock import SHANGHAI, parse_iso

# RFC 9864 deprecates the polymorphic JWS alg "EdDSA" (RFC 8037) for the fully specified
# "Ed25519": new credentials are signed with it. Credentials already issued under "EdDSA"
# (the same key, the same signature arithmetic) keep verifying.
ALG = "Ed25519"
LEGACY_ALG = "EdDSA"
ALGORITHMS = [ALG]  # what we sign with
VERIFY_ALGORITHMS = [ALG, LEGACY_ALG]  # what we accept
MEDIA_TYPE = "application/vc+jwt"
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CERTIFICATE_TYPE = "QualificationCertificate"
_ID_NAMESPACE = uuid.UUID("6f2d3c1e-8a51-4c5e-9a57-2c3ad3a0c0de")  # Kaowu certificates


@dataclass(frozen=True)
class Issuer:
    """Who signs: the issuer's id and name, its Ed25519 key, where its pages are."""

    issuer_id: str
    name: str
    key: OKPKey  # private
    base_url: str  # PUBLIC_BASE_URL, without a trailing slash

    @cached_property
    def kid(self) -> str:
        return self.key.thumbprint()  # RFC 7638: the same key always has the same kid

    def jwks(self) -> dict:
        """The public key, without an ``alg``: it verifies credentials signed under both
        names (a JWK's ``alg`` would restrict it to one)."""
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig"}]}

    @cached_property
    def keyset(self) -> KeySet:
        """The public keys verification trusts (the private one never verifies)."""
        return KeySet.import_key_set(self.jwks())

    def verify_url(self, token: str) -> str:
        return f"{self.base_url}/verify/{token}"

    def status_list_url(self, list_no: int) -> str:
        return f"{self.base_url}/credentials/status/{list_no}"

    def sign(self, claims: dict) -> str:
        header = {"alg": ALG, "kid": self.kid, "typ": "vc+jwt", "cty": "vc"}
        return jwt.encode(header, claims, self.key, algorithms=ALGORITHMS)


def _stamp(at: datetime) -> str:
    """XML Schema dateTimeStamp in UTC, to the second (VC ``validFrom``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credential_id(certificate_number: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, certificate_number)}"


def certificate_claims(issuer: Issuer, facts: dict) -> dict:
    """The certificate as a VC 2.0 document (the JWT claims). ``facts``: what
    ``domain.issue`` decided (number, holder, level, status index, issue time)."""
    issued = parse_iso(facts["issued_at"])
    list_no, index = statuslist.locate(facts["status_index"])
    status_url = issuer.status_list_url(list_no)
    number = facts["certificate_number"]
    return {
        "@context": [VC_CONTEXT],
        "id": credential_id(number),
        "type": ["VerifiableCredential", CERTIFICATE_TYPE],
        "issuer": {"id": issuer.issuer_id, "name": issuer.name},
        "validFrom": _stamp(issued),
        "credentialSubject": {
            "type": "QualifiedPerson",
            "name": facts["candidate"]["name"],
            "qualification": domain.QUALIFICATION_NAME,
            "level": facts["level"],
            "levelName": domain.level_title(facts["level"]),
            "certificateNumber": number,
            "issueDate": issued.astimezone(SHANGHAI).date().isoformat(),
            "examYear": facts["exam_year"],
        },
        "credentialStatus": {
            "id": f"{status_url}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(index),
            "statusListCredential": status_url,
        },
        "iss": issuer.issuer_id,
        "jti": credential_id(number),
        "iat": int(issued.timestamp()),
    }


def status_list_claims(issuer: Issuer, list_no: int, bits: bytes, now: datetime) -> dict:
    """The BitstringStatusListCredential of list ``list_no``."""
    url = issuer.status_list_url(list_no)
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": {"id": issuer.issuer_id, "name": issuer.name},
        "validFrom": _stamp(now),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": statuslist.encode(bits),
        },
        "iss": issuer.issuer_id,
        "iat": int(now.timestamp()),
    }


# --- checking a presented credential --------------------------------------------------


@dataclass(frozen=True)
class Inspection:
    """What a presented VC-JWT is: ``ok`` (a good signature of ours: the caller still
    checks the register and the status), ``not_ours``, or ``invalid`` with ``why``
    (``malformed`` | ``bad_signature``) and a sentence."""

    result: str
    why: str | None = None
    detail: str | None = None
    claims: dict | None = None


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_part(part: str):
    try:
        value = orjson.loads(_b64(part))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def inspect(token: str, issuer: Issuer) -> Inspection:
    """Parse the header; a credential under this issuer's key has its signature checked
    before anything else is believed (a changed byte anywhere fails it); one under another
    key is ``not_ours`` unless it claims this issuer (then its signature is bad)."""
    parts = token.strip().split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not all(parts):
        return Inspection("invalid", "malformed", "not a compact JWS (header.payload.signature)")
    header = _json_part(parts[0])
    if header is None:
        return Inspection("invalid", "malformed", "the JOSE header is not base64url JSON")
    if header.get("alg") not in VERIFY_ALGORITHMS:
        return Inspection("invalid", "malformed", f"unsupported algorithm {header.get('alg')!r} "
                                                  f"(certificates are signed with {ALG})")
    if header.get("kid") == issuer.kid:
        try:
            with warnings.catch_warnings():
                # joserfc warns on every use of the deprecated name; an old credential
                # verified is no news
                warnings.filterwarnings("ignore", message="EdDSA is deprecated",
                                        category=SecurityWarning)
                claims = jwt.decode(token.strip(), issuer.keyset,
                                    algorithms=VERIFY_ALGORITHMS).claims
        except JoseError:
            return Inspection("invalid", "bad_signature",
                              "the signature does not match the content: it was altered after "
                              "signing")
    else:
        claims = _json_part(parts[1])
        if claims is None:
            return Inspection("invalid", "malformed", "the claims are not base64url JSON")
        vc_issuer = claims.get("issuer")
        vc_issuer = vc_issuer.get("id") if isinstance(vc_issuer, dict) else vc_issuer
        if issuer.issuer_id not in (claims.get("iss"), vc_issuer):
            return Inspection("not_ours", detail=f"issued by {claims.get('iss') or vc_issuer!r}, "
                                                 f"not by {issuer.issuer_id}")
        return Inspection("invalid", "bad_signature",
                          "claims to be ours but is not signed with this issuer's key")
    subject = claims.get("credentialSubject")
    status = claims.get("credentialStatus")
    if not isinstance(subject, dict) or not isinstance(subject.get("certificateNumber"), str) \
            or not isinstance(status, dict):
        return Inspection("invalid", "malformed", "not a certificate credential "
                                                  "(no credentialSubject.certificateNumber)")
    return Inspection("ok", claims=claims)
