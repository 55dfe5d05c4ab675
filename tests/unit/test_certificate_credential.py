"""Verifiable Credentials of certificates (VC-JWT, JWS alg Ed25519), the Bitstring
Status List encoding, and the certificate PDF."""

import base64
import gzip
import json
import warnings
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet, OKPKey

from services.certificate import credential, statuslist
from services.certificate.credential import Issuer, inspect
from services.certificate.pdf import render_certificate
from shared.pdf import read_pdf

FACTS = {"certificate_number": "JL202610000001", "qualification_id": "q-1",
         "account_id": "acc-1", "session_id": "2026-shanghai-jiliang", "exam_year": 2026,
         "level": "L1", "status_index": 131_075,
         "candidate": {"name": "王建国", "id_type": "resident_id", "id_number": "310104198805123455"},
         "issued_at": "2026-09-15T02:00:00+00:00"}


def issuer(key=None, issuer_id="https://kaowu.example/issuer"):
    return Issuer(issuer_id=issuer_id, name="上海市职业能力考试院",
                  key=key or OKPKey.generate_key("Ed25519"), base_url="https://kaowu.example")


ISSUER = issuer()


def b64(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def signed(iss=ISSUER, facts=FACTS):
    return iss.sign(credential.certificate_claims(iss, facts))


# --- the credential -------------------------------------------------------------------


def test_the_credential_is_a_vc_2_0_jwt_signed_with_ed25519():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        token = signed()
    # RFC 9864's fully specified name: joserfc no longer warns that EdDSA is deprecated
    assert not [w for w in seen if issubclass(w.category, SecurityWarning)], seen
    header, claims = b64(token.split(".")[0]), b64(token.split(".")[1])
    assert header == {"alg": "Ed25519", "kid": ISSUER.kid, "typ": "vc+jwt", "cty": "vc"}
    assert claims["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert claims["type"] == ["VerifiableCredential", "QualificationCertificate"]
    assert claims["issuer"] == {"id": "https://kaowu.example/issuer", "name": "上海市职业能力考试院"}
    assert claims["validFrom"] == "2026-09-15T02:00:00Z"
    assert claims["credentialSubject"] == {
        "type": "QualifiedPerson", "name": "王建国", "qualification": "注册计量师", "level": "L1",
        "levelName": "一级注册计量师", "certificateNumber": "JL202610000001",
        "issueDate": "2026-09-15", "examYear": 2026}
    # the second status list, at index 3 in it
    assert claims["credentialStatus"] == {
        "id": "https://kaowu.example/credentials/status/1#3",
        "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "3", "statusListCredential": "https://kaowu.example/credentials/status/1"}
    assert claims["iss"] == "https://kaowu.example/issuer" and claims["jti"].startswith("urn:uuid:")
    # any JOSE library verifies it with the published JWKS
    public = OKPKey.import_key(ISSUER.jwks()["keys"][0])
    assert not public.is_private
    assert jwt.decode(token, public, algorithms=["Ed25519"]).claims == claims


def test_a_credential_issued_under_the_old_alg_name_eddsa_still_verifies():
    """Issued before the switch: header alg "EdDSA", the same key and signature arithmetic."""
    claims = credential.certificate_claims(ISSUER, FACTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        old = jwt.encode({"alg": "EdDSA", "kid": ISSUER.kid, "typ": "vc+jwt", "cty": "vc"},
                         claims, ISSUER.key, algorithms=["EdDSA"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = inspect(old, ISSUER)
    assert got.result == "ok", got
    assert not [w for w in seen if issubclass(w.category, SecurityWarning)]
    # and by anyone holding the published keys (the JWK names no alg, so both verify)
    published = KeySet.import_key_set(ISSUER.jwks())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        assert jwt.decode(old, published, algorithms=["EdDSA"]).claims == claims
    assert jwt.decode(signed(), published, algorithms=["Ed25519"]).claims["jti"]
    # tampered with, under the old name: still a bad signature, not valid
    head, body, sig = old.split(".")
    forged = ".".join([head, body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB"), sig])
    assert inspect(forged, ISSUER).result == "invalid"


def test_round_trip():
    got = inspect(signed(), ISSUER)
    assert got.result == "ok" and got.claims["credentialSubject"]["certificateNumber"] == \
        "JL202610000001"


def test_every_byte_of_the_payload_counts():
    token = signed()
    head, payload, sig = token.split(".")
    for i in range(len(payload)):
        flipped = payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1:]
        got = inspect(f"{head}.{flipped}.{sig}", ISSUER)
        assert got.result == "invalid", i
        assert got.why in ("bad_signature", "malformed"), i


def test_a_changed_claim_fails_the_signature():
    token = signed()
    head, payload, sig = token.split(".")
    claims = b64(payload)
    claims["credentialSubject"]["level"] = "L2"  # 二级 -> 一级 would be worth forging
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    got = inspect(f"{head}.{forged}.{sig}", ISSUER)
    assert (got.result, got.why) == ("invalid", "bad_signature")


def test_signed_by_another_key():
    other = issuer(issuer_id=ISSUER.issuer_id)  # claims to be us, another key
    got = inspect(signed(other), ISSUER)
    assert (got.result, got.why) == ("invalid", "bad_signature")
    # another key presenting our kid: the signature check fails
    forged = other.key
    claims = credential.certificate_claims(ISSUER, FACTS)
    token = jwt.encode({"alg": "EdDSA", "kid": ISSUER.kid, "typ": "vc+jwt"}, claims, forged,
                       algorithms=["EdDSA"])
    assert (inspect(token, ISSUER).result, inspect(token, ISSUER).why) == ("invalid", "bad_signature")


def test_another_issuers_credential_is_not_ours():
    theirs = issuer(issuer_id="did:web:elsewhere.example")
    assert inspect(signed(theirs), ISSUER).result == "not_ours"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***",
                                   base64.urlsafe_b64encode(b"[1]").decode() + ".e30.c2ln"])
def test_malformed(token):
    got = inspect(token, ISSUER)
    assert (got.result, got.why) == ("invalid", "malformed")


def test_another_algorithm_is_refused():
    claims = credential.certificate_claims(ISSUER, FACTS)
    from joserfc.jwk import OctKey

    token = jwt.encode({"alg": "HS256", "kid": ISSUER.kid}, claims, OctKey.generate_key(256))
    assert inspect(token, ISSUER).why == "malformed"


def test_the_kid_is_the_key_thumbprint_and_stable():
    key = OKPKey.generate_key("Ed25519")
    assert issuer(key).kid == issuer(OKPKey.import_key(key.as_pem(private=True))).kid


# --- the status list ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=statuslist.LIST_SIZE - 1), max_size=300))
def test_status_list_round_trip(revoked):
    bits = statuslist.bitstring(revoked)
    assert len(bits) * 8 == statuslist.LIST_SIZE
    encoded = statuslist.encode(bits)
    assert encoded.startswith("u") and "=" not in encoded
    back = statuslist.decode(encoded)
    assert back == bits
    assert statuslist.set_indices(back) == sorted(revoked)
    for i in list(revoked)[:20]:
        assert statuslist.is_set(back, i)


def test_status_list_bit_order_and_flip():
    bits = statuslist.bitstring([0, 9])
    assert bits[:2] == bytes([0b1000_0000, 0b0100_0000])  # index 0 is the leftmost bit
    encoded = statuslist.encode(statuslist.bitstring([]))
    assert not statuslist.is_set(statuslist.decode(encoded), 42)
    flipped = statuslist.encode(statuslist.bitstring([42]))
    assert flipped != encoded and statuslist.is_set(statuslist.decode(flipped), 42)
    # the spec's encoding: gzip of the raw bits, base64url without padding, multibase 'u'
    raw = gzip.decompress(base64.urlsafe_b64decode(flipped[1:] + "=" * (-len(flipped[1:]) % 4)))
    assert raw == statuslist.bitstring([42])
    assert statuslist.encode(bits) == statuslist.encode(bits)  # deterministic (mtime 0)


def test_status_list_locate_and_bad_input():
    assert statuslist.locate(0) == (0, 0)
    assert statuslist.locate(131_075) == (1, 3)
    for bad in ("", "zabc", "u!!!", "u" + base64.urlsafe_b64encode(b"not gzip").decode()):
        with pytest.raises(ValueError):
            statuslist.decode(bad)
    with pytest.raises(ValueError):
        statuslist.bitstring([statuslist.LIST_SIZE])


def test_the_status_list_credential_is_signed_too():
    bits = statuslist.bitstring([3])
    claims = credential.status_list_claims(ISSUER, 1, bits, datetime(2026, 9, 20, tzinfo=UTC))
    token = ISSUER.sign(claims)
    got = jwt.decode(token, ISSUER.keyset, algorithms=["Ed25519"]).claims
    assert got["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert got["id"] == "https://kaowu.example/credentials/status/1"
    subject = got["credentialSubject"]
    assert subject["type"] == "BitstringStatusList" and subject["statusPurpose"] == "revocation"
    assert statuslist.is_set(statuslist.decode(subject["encodedList"]), 3)


# --- the PDF --------------------------------------------------------------------------


def test_the_pdf_has_the_chinese_text_and_the_verification_qr():
    url = "https://kaowu.example/verify/Xy7-token-0123456789abcdef"
    cert = {**FACTS, **FACTS["candidate"]}
    data = render_certificate(cert, url, "上海市职业能力考试院")
    assert data.startswith(b"%PDF")
    pdf = read_pdf(data)
    assert pdf.pages == 1
    for text in ("王建国", "JL202610000001", "一级注册计量师", "职业资格证书", "2026年09月15日",
                 "上海市职业能力考试院", "310104198805123455"):
        assert text in pdf.text, text
    assert pdf.qr_codes == (url,)
    assert render_certificate(cert, url, "上海市职业能力考试院") == data  # reproducible
