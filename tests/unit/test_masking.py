"""The one masking rule (shared.masking): logs, the gateway's operator routes, the CLI."""

import pytest

from shared.masking import mask, mask_id_number, mask_mobile, mask_text


@pytest.mark.parametrize("value, shown", [
    ("310104198805123455", "**************3455"),
    ("31011519920315002X", "**************002X"),
    ("E12345678", "*****5678"),
    ("H1234", "*****"),  # too short to show any of it
])
def test_id_numbers_keep_only_their_last_four(value, shown):
    assert mask_id_number(value) == shown


def test_mobiles_keep_the_first_three_and_last_four():
    assert mask_mobile("13800138000") == "138****8000"


def test_payloads_are_masked_by_key_and_by_shape():
    payload = {
        "account_id": "0f" * 16, "name": "王建国",
        "candidate": {"id_type": "resident_id", "id_number": "310104198805123455",
                      "mobile": "13912345678"},
        "reason": "证件号 310104198805123455 与手机 13912345678 不符",
        "password": "Secret123", "ticket_number": "20262916L1000001",
        "history": [{"id_number": "31011519920315002X"}],
    }
    out = mask(payload)
    text = repr(out)
    for secret in ("310104198805123455", "13912345678", "31011519920315002X", "Secret123"):
        assert secret not in text
    assert out["candidate"]["id_number"] == "**************3455"
    assert out["candidate"]["mobile"] == "139****5678"
    assert "**************3455" in out["reason"] and "139****5678" in out["reason"]
    assert out["password"] == "***"
    # our own identifiers are not a person's numbers
    assert out["ticket_number"] == "20262916L1000001" and out["account_id"] == "0f" * 16
    assert out["history"][0]["id_number"] == "**************002X"


def test_text_without_personal_data_is_left_alone():
    assert mask_text("session 2026-shanghai-jiliang-demo-202604071000 opens") == \
        "session 2026-shanghai-jiliang-demo-202604071000 opens"
