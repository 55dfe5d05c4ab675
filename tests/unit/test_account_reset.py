"""找回密码 in the account domain: a code per request, single use, expiring after 10
minutes, five wrong codes use it up, and at most so many codes per account."""

from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.account import domain
from shared import reset_codes
from tests.unit.test_account_domain import NOW, History, registered

KEY = b"k" * 32


def rid(n: int) -> str:
    return f"{n:032x}"


def request(h: History, n: int, now=NOW):
    reset_id = rid(n)
    hashed = reset_codes.code_hash(KEY, reset_id, reset_codes.code_for(KEY, reset_id))
    return h.append(domain.request_password_reset(h.account, reset_id, hashed, now))


def finish(h: History, code: str, now, new_hash="$argon2id$reset"):
    events, done = domain.reset_password(
        h.account, lambda reset_id, expected: reset_codes.matches(KEY, reset_id, code, expected),
        new_hash, now)
    h.append(events)
    return done


def code(n: int) -> str:
    return reset_codes.code_for(KEY, rid(n))


def test_a_request_keeps_only_the_keyed_hash_and_publishes_neither():
    h = registered()
    private, public = request(h, 1)
    assert private.type == "PasswordResetRequested"
    assert code(1) not in str(private.payload) and len(code(1)) == 6 and code(1).isdigit()
    assert private.payload["code_hash"] == reset_codes.code_hash(KEY, rid(1), code(1))
    assert private.payload["expires_at"] == (NOW + timedelta(minutes=10)).isoformat()
    assert public.type == "PasswordResetCodeIssued"
    assert set(public.payload) == {"account_id", "reset_id", "expires_at"}


def test_the_right_code_resets_once():
    h = registered()
    request(h, 1)
    at = NOW + timedelta(minutes=3)
    assert finish(h, code(1), at)
    assert h.account.password_hash == "$argon2id$reset"
    assert h.account.credentials_changed_at == at
    assert h.stored[-1].type == "PasswordReset"
    assert not finish(h, code(1), at + timedelta(seconds=1), "$argon2id$again")  # used
    assert h.account.password_hash == "$argon2id$reset"


def test_a_code_expires_after_ten_minutes():
    h = registered()
    request(h, 1)
    assert not finish(h, code(1), NOW + timedelta(minutes=10))
    assert h.stored[-1].type == "PasswordResetCodeIssued"  # nothing recorded
    h2 = registered()
    request(h2, 1)
    assert finish(h2, code(1), NOW + timedelta(minutes=9, seconds=59))


def test_wrong_codes_are_counted_and_the_fifth_uses_the_code_up():
    h = registered()
    request(h, 1)
    wrong = f"{(int(code(1)) + 1) % 10**6:06d}"
    for attempt in range(1, 6):
        assert not finish(h, wrong, NOW + timedelta(seconds=attempt))
        assert h.stored[-1].type == "PasswordResetCodeRejected"
        assert h.stored[-1].payload["attempts"] == attempt
    assert not finish(h, code(1), NOW + timedelta(seconds=10))  # right, but too late
    assert h.account.password_hash == "$argon2id$hash"


def test_a_new_code_replaces_the_previous_one():
    h = registered()
    request(h, 1)
    request(h, 2, NOW + timedelta(minutes=2))
    assert not finish(h, code(1), NOW + timedelta(minutes=3))
    assert finish(h, code(2), NOW + timedelta(minutes=3))


def test_codes_per_account_are_limited_silently():
    h = registered()
    assert request(h, 1)
    assert request(h, 2, NOW + timedelta(seconds=30)) == []  # within a minute of the last
    times = [NOW + timedelta(minutes=m) for m in (1, 2, 3, 4)]
    for n, at in enumerate(times, start=3):
        assert request(h, n, at)
    # five within the hour: no sixth until the first is an hour old
    assert request(h, 9, NOW + timedelta(minutes=59)) == []
    assert request(h, 10, NOW + timedelta(hours=1, seconds=1))


def test_no_code_without_a_request_and_none_for_staff():
    h = registered()
    assert not finish(h, "123456", NOW)
    assert h.stored[-1].type == "CredentialsSet"
    # a staff account gets no codes (it has no mobile)
    staff = History()
    staff.append(domain.create_staff("s1", {"username": "point1_li", "name": "李",
                                            "role": "staff", "registration_point": "2916"},
                                     "$h", NOW))
    assert domain.request_password_reset(staff.account, rid(1), "0" * 64, NOW) == []


def test_the_hash_needs_the_key_and_the_placeholder_reveals_the_code():
    assert not reset_codes.matches(b"x" * 32, rid(1), code(1),
                                   reset_codes.code_hash(KEY, rid(1), code(1)))
    assert not reset_codes.matches(KEY, rid(1), "12345", "0" * 64)
    text = f"验证码{reset_codes.placeholder(rid(7))}，10分钟内有效"
    assert code(7) not in text
    assert reset_codes.reveal(text, KEY) == f"验证码{code(7)}，10分钟内有效"
    with pytest.raises(ValueError):
        reset_codes.placeholder("not-a-reset-id")


def test_a_change_of_password_ends_the_pending_code():
    h = registered()
    request(h, 1)
    h.append(domain.change_password(h.account, "$argon2id$changed", NOW + timedelta(minutes=1)))
    assert not finish(h, code(1), NOW + timedelta(minutes=2))


# --- property: any sequence of requests, guesses and waits ---------------------------------


class ResetMachine(RuleBasedStateMachine):
    """Requests, right and wrong codes and the clock, in any order: the password changes
    only with the latest code, within 10 minutes, before 5 wrong tries, once; codes go out
    at most once a minute and five an hour."""

    def __init__(self):
        super().__init__()
        self.h = registered()
        self.now = NOW
        self.n = 0
        self.sent = []  # (n, at) of codes that went out
        self.latest = None  # the model's code: [n, expires, wrong tries, used]
        self.resets = 0

    @rule(minutes=st.integers(0, 30))
    def wait(self, minutes):
        self.now += timedelta(minutes=minutes, seconds=1)

    @rule()
    def ask(self):
        self.n += 1
        recent = [t for _, t in self.sent if t > self.now - timedelta(hours=1)]
        allowed = len(recent) < 5 and (not recent
                                       or self.now - recent[-1] >= timedelta(seconds=60))
        events = request(self.h, self.n, self.now)
        assert bool(events) == allowed
        if allowed:
            self.sent.append((self.n, self.now))
            self.latest = [self.n, self.now + timedelta(minutes=10), 0, False]

    @rule(which=st.sampled_from(["latest", "earlier", "wrong"]))
    def give(self, which):
        if self.latest is None:
            assert not finish(self.h, code(1), self.now)
            return
        n, expires, wrong, used = self.latest
        usable = not used and self.now < expires and wrong < 5
        if which == "latest":
            given = code(n)
        elif which == "earlier" and len(self.sent) > 1:
            given = code(self.sent[-2][0])
        else:
            given = f"{(int(code(n)) + 1) % 10**6:06d}"
        right = given == code(n)
        done = finish(self.h, given, self.now, f"$argon2id${self.n}")
        assert done == (usable and right)
        if done:
            self.latest[3] = True
            self.resets += 1
            assert self.h.account.credentials_changed_at == self.now
        elif usable:
            self.latest[2] += 1

    @invariant()
    def password_changes_only_by_a_reset(self):
        resets = [e for e in self.h.stored if e.type == "PasswordReset"]
        assert len(resets) == self.resets
        assert len({e.payload["reset_id"] for e in resets}) == len(resets)  # each code once


ResetMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                          deadline=None)
test_reset_state_machine = ResetMachine.TestCase
