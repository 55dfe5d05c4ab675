"""The Account's evolve (``domain.ACCOUNT``): for random legal histories the fold and the
account's row (candidates: ``accounts``; staff: ``staff_accounts``) agree on every field
they share."""

from hypothesis import given, settings
from hypothesis import strategies as st

from services.account import domain
from services.account.projection import COLUMNS, AccountProjection
from tests.unit.evolve_check import history, rows

ID = {"account_id": "acc1"}
CANDIDATE = ("AccountRegistered", {
    **ID, "username": "ZhangSan", "name": "张三", "id_type": "resident_id",
    "id_number": "11010519491231002X", "mobile": "13800000000",
    "registered_at": "2026-03-01T10:00:00+08:00"})
STAFF = ("StaffAccountCreated", {
    **ID, "username": "Staff1", "name": "李四", "role": "staff", "registration_point": "2916",
    "created_at": "2026-03-01T10:00:00+08:00"})
TIMES = st.sampled_from(["2026-04-01T10:00:00+08:00", "2026-04-02T11:30:00.250000+08:00"])


def with_(**drawn):
    return lambda account: st.fixed_dictionaries(drawn).map(lambda d: {**ID, **d})


hashes = st.sampled_from(["$argon2id$a", "$argon2id$b"])
PAYLOADS = {
    "CredentialsSet": with_(password_hash=hashes),
    "PasswordChanged": with_(password_hash=hashes, changed_at=TIMES),
    "PasswordResetRequested": with_(reset_id=st.sampled_from(["r1", "r2"]), code_hash=hashes,
                                    expires_at=TIMES, requested_at=TIMES),
    "PasswordResetCodeRejected": with_(reset_id=st.sampled_from(["r1", "r2"]),
                                       attempts=st.integers(1, 5)),
    "PasswordReset": with_(reset_id=st.just("r1"), password_hash=hashes, reset_at=TIMES),
    "ProfileUpdated": with_(section=st.sampled_from(domain.SECTIONS), data=st.just({"x": 1}),
                            completeness=st.sampled_from([20, 80, 100]),
                            missing=st.just(["photo"])),
    "LoginFailed": with_(failures=st.integers(1, 6), locked_until=st.none() | TIMES),
    "LoginFailuresReset": with_(),
}


def test_every_step_of_the_evolve_a_read_model_reads_has_a_payload_here():
    read = AccountProjection.event_types - domain.ACCOUNT.opens
    assert read <= set(PAYLOADS) <= set(domain.ACCOUNT)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), opening=st.sampled_from([CANDIDATE, STAFF]))
def test_fold_and_row_agree(data, opening):
    events, account = history(data, domain.ACCOUNT, domain.account_stream("acc1"), opening,
                              PAYLOADS)
    table = "accounts" if opening is CANDIDATE else "staff_accounts"
    read = [e for e in events if e.type in AccountProjection.event_types]
    [row] = rows(AccountProjection(), read)[table].values()
    expected = {}
    for name in COLUMNS[table]:
        for column, convert in COLUMNS[table].columns(name):
            value = getattr(account, name)
            expected[column] = convert(value) if convert else value
    assert {k: row[k] for k in expected} == expected
