"""The Account aggregate (账号): decisions as events. Pure: no I/O, no clock reads.

A command function takes the folded ``Account`` (or nothing, to register), validated input
and ``now`` (an aware datetime from the caller's clock) and returns the events to append.
Rules that say no raise ``ValidationFailed`` (with the field) or ``Unauthorized``.

Uniqueness (one account per ID number, per mobile, per username) is made race-safe by the
event store rather than by a read: registering also appends a claim event to a stream
named after a hash of the value, expecting that stream to be empty.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.account import identity
from services.account.identity import username_key
from services.account.schemas import (
    MAX_DEGREE_ENTRIES,
    MAX_EDUCATION_ENTRIES,
    MAX_WORK_ENTRIES,
)
from shared.contracts.account import PHOTO_KEYS, SECTIONS
from shared.errors import Refused, Unauthorized, ValidationFailed
from shared.events import NewEvent
from shared.evolve import Evolve, Step

SECTION_WEIGHT = 100 // len(SECTIONS)  # each of the five sections is worth 20%

EDUCATION_REQUIRED = ("level", "school", "major", "major_category", "graduated_on")
WORK_REQUIRED = ("employer", "position", "start")

# list-valued parts of a section: key -> (entry_id prefix, cap, what the entries are)
_LISTS = {
    "education": {
        "education": ("e", MAX_EDUCATION_ENTRIES, "education"),
        "degrees": ("d", MAX_DEGREE_ENTRIES, "degree"),
    },
    "work": {"entries": ("w", MAX_WORK_ENTRIES, "work")},
}
# dates that must not lie in the future: section -> list key (None: the section itself) -> fields
_DATES = {
    "basic": {None: ("birth_date",)},
    "education": {"education": ("graduated_on",), "degrees": ("awarded_on",)},
    "work": {"entries": ("start", "end")},
}


@dataclass
class PendingReset:
    reset_id: str
    code_hash: str
    expires_at: datetime
    attempts: int = 0  # wrong codes given so far


@dataclass
class Account:
    account_id: str
    version: int = 0  # stream version of the last folded event: the expected version to append at
    username: str = ""
    name: str = ""
    id_type: str = ""
    id_number: str = ""
    mobile: str = ""
    registered_at: datetime | None = None
    password_hash: str = ""
    sections: dict[str, dict] = field(default_factory=dict)  # section -> its whole content
    completeness: int = 0  # 账号信息完整度, percent
    complete: bool = False  # the last save left it 100 % complete (ProfileCompleted said so)
    failures: int = 0  # consecutive failed logins
    locked_until: datetime | None = None
    role: str = "candidate"  # or a staff role: staff (报名点), authority (考试机构), operator
    registration_point: str | None = None  # staff only: the point they work for
    # 找回密码: the code pending (if any), when codes were asked for, when the password
    # last changed (tokens signed in before it are refused by the gateway)
    reset: PendingReset | None = None
    reset_requests: tuple[datetime, ...] = ()
    credentials_changed_at: datetime | None = None

    @property
    def missing(self) -> list[str]:
        return completeness(self.sections)[1]


# --- stream ids -----------------------------------------------------------------------


def account_stream(account_id: str) -> str:
    return f"account-{account_id}"


def _claim_stream(kind: str, value: str) -> str:
    # hashed: stream ids show up in logs and operator tools, personal data must not
    return f"claim-{kind}-{hashlib.sha256(f'{kind}:{value}'.encode()).hexdigest()}"


def id_claim_stream(id_type: str, id_number: str) -> str:
    return _claim_stream("id", f"{id_type}:{id_number.strip().upper()}")


def mobile_claim_stream(mobile: str) -> str:
    return _claim_stream("mobile", mobile.strip())


def username_claim_stream(username: str) -> str:
    return _claim_stream("username", username_key(username))


# --- completeness ---------------------------------------------------------------------


def _filled(data: dict, keys) -> bool:
    return all(data.get(k) not in (None, "") for k in keys)


def section_complete(section: str, data: dict | None) -> bool:
    """Whether a section counts towards completeness (a draft does not)."""
    data = data or {}
    match section:
        case "photo":
            return bool(data.get("sha256"))
        case "basic":
            return _filled(data, ("gender", "birth_date", "ethnicity"))
        case "education":  # at least one diploma; degrees are optional (大专 has none)
            return any(_filled(e, EDUCATION_REQUIRED) for e in data.get("education", ()))
        case "work":
            return any(_filled(e, WORK_REQUIRED) for e in data.get("entries", ()))
        case "contact":
            return _filled(data, ("email", "address"))
    raise ValueError(f"unknown profile section {section!r}")


def completeness(sections: dict) -> tuple[int, list[str]]:
    """账号信息完整度: (percent, the sections still missing, in display order)."""
    missing = [s for s in SECTIONS if not section_complete(s, sections.get(s))]
    return SECTION_WEIGHT * (len(SECTIONS) - len(missing)), missing


# --- fold -----------------------------------------------------------------------------


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _registered(event) -> Account:
    p = event.payload
    return Account(account_id=p["account_id"], username=p["username"], name=p["name"],
                   id_type=p["id_type"], id_number=p["id_number"], mobile=p["mobile"],
                   registered_at=_datetime(p["registered_at"]))


def _staff_created(event) -> Account:
    p = event.payload
    return Account(account_id=p["account_id"], username=p["username"], name=p["name"],
                   role=p["role"], registration_point=p["registration_point"],
                   registered_at=_datetime(p["created_at"]))


def _password_changed(event) -> dict:
    p = event.payload
    # events from before changed_at was recorded: their commit time
    return {"password_hash": p["password_hash"], "reset": None,
            "credentials_changed_at": _datetime(
                p.get("changed_at") or (getattr(event, "metadata", None) or {}).get("occurred_at"))}


def _reset_requested(account: Account, event) -> None:
    p = event.payload
    account.reset = PendingReset(p["reset_id"], p["code_hash"], _datetime(p["expires_at"]))
    account.reset_requests = (*account.reset_requests[-19:], _datetime(p["requested_at"]))


def _reset_code_rejected(account: Account, event) -> None:
    p = event.payload
    if account.reset is not None and account.reset.reset_id == p["reset_id"]:
        account.reset.attempts = p["attempts"]


def _section_saved(account: Account, event) -> None:
    account.sections = {**account.sections, event.payload["section"]: event.payload["data"]}


# the Account's evolve: event type -> its step (an account has no status chart); the fold
# and the accounts / staff_accounts rows both use it
ACCOUNT = Evolve("account", {
    "AccountRegistered": Step.opening(_registered),
    "StaffAccountCreated": Step.opening(_staff_created),
    "CredentialsSet": Step(sets=lambda ev: {"password_hash": ev.payload["password_hash"]}),
    "PasswordChanged": Step(sets=_password_changed),
    "PasswordResetRequested": Step(then=_reset_requested),
    "PasswordResetCodeRejected": Step(then=_reset_code_rejected),
    # single use; a reset also unlocks
    "PasswordReset": Step(sets=lambda ev: {
        "password_hash": ev.payload["password_hash"],
        "credentials_changed_at": _datetime(ev.payload["reset_at"]), "reset": None,
        "failures": 0, "locked_until": None}),
    # the last save's completeness says whether the profile is complete: ProfileCompleted and
    # ProfileBecameIncomplete, which follow it, announce that to others and change nothing here
    "ProfileUpdated": Step(sets=lambda ev: {
        "completeness": ev.payload["completeness"],
        "complete": ev.payload["completeness"] == 100}, then=_section_saved),
    "LoginFailed": Step(sets=lambda ev: {"failures": ev.payload["failures"],
                                         "locked_until": _datetime(ev.payload["locked_until"])}),
    "LoginFailuresReset": Step(sets=lambda ev: {"failures": 0, "locked_until": None}),
}, ident=lambda account: account.account_id)


def fold(events) -> Account | None:
    """The account as its stream's events (``.type``, ``.payload``, ``.stream_version``) left it."""
    return ACCOUNT.fold(events)


# --- commands -------------------------------------------------------------------------


def _require_aware(now: datetime):
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def register(account_id: str, data: dict, password_hash: str, now: datetime) -> list[NewEvent]:
    """注册: ``data`` is RegisterSchema's output. The three claims go to their own streams,
    which the service appends to expecting them empty (someone else holds the value otherwise).
    """
    _require_aware(now)
    stream = account_stream(account_id)
    claim = {"account_id": account_id}
    return [
        NewEvent(
            stream,
            "AccountRegistered",
            {
                "account_id": account_id,
                "username": data["username"],
                "name": data["name"],
                "id_type": data["id_type"],
                "id_number": data["id_number"],
                "mobile": data["mobile"],
                "registered_at": now.isoformat(),
            },
        ),
        NewEvent(
            stream, "CredentialsSet", {"account_id": account_id, "password_hash": password_hash}
        ),
        NewEvent(
            id_claim_stream(data["id_type"], data["id_number"]), "IdNumberClaimed", dict(claim)
        ),
        NewEvent(mobile_claim_stream(data["mobile"]), "MobileClaimed", dict(claim)),
        NewEvent(username_claim_stream(data["username"]), "UsernameClaimed", dict(claim)),
    ]


def create_staff(account_id: str, data: dict, password_hash: str, now: datetime) -> list[NewEvent]:
    """工作人员账号: ``data`` is CreateStaffSchema's output. The username is claimed on the
    same claim stream as candidates' usernames: one namespace for everyone who logs in."""
    _require_aware(now)
    stream = account_stream(account_id)
    return [
        NewEvent(
            stream,
            "StaffAccountCreated",
            {
                "account_id": account_id,
                "username": data["username"],
                "name": data["name"],
                "role": data["role"],
                "registration_point": data.get("registration_point"),
                "created_at": now.isoformat(),
            },
        ),
        NewEvent(
            stream, "CredentialsSet", {"account_id": account_id, "password_hash": password_hash}
        ),
        NewEvent(
            username_claim_stream(data["username"]), "UsernameClaimed", {"account_id": account_id}
        ),
    ]


def _plain(value):
    """JSON-plain copy: dates become ISO strings."""
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _future_dates(section: str, content: dict, today: date) -> dict:
    errors = {}
    for key, names in _DATES.get(section, {}).items():
        rows = (
            [("", content)]
            if key is None
            else [(f"{key}.{i}.", e) for i, e in enumerate(content.get(key, ()))]
        )
        for prefix, row in rows:
            for name in names:
                if row.get(name) and date.fromisoformat(row[name]) > today:
                    errors[prefix + name] = "must not be in the future"
    return errors


def _identity_mismatch(account: Account, content: dict) -> dict:
    # a resident ID encodes birth date and gender; the form must agree with it
    if account.id_type != "resident_id":
        return {}
    errors = {}
    born = identity.resident_id_birth_date(account.id_number).isoformat()
    if content.get("birth_date") not in (None, born):
        errors["birth_date"] = "does not match the birth date in your ID number"
    if content.get("gender") not in (None, identity.resident_id_gender(account.id_number)):
        errors["gender"] = "does not match the gender in your ID number"
    return errors


def _keep_entries(section: str, saved: dict, content: dict) -> tuple[dict, dict]:
    """Entries with ids assigned to new ones; errors if a saved entry would be lost."""
    out, errors = dict(content), {}
    for key, (prefix, cap, what) in _LISTS[section].items():
        saved_ids = [e["entry_id"] for e in saved.get(key, ())]
        given = content.get(key, [])
        ids = [e["entry_id"] for e in given if e.get("entry_id")]
        unknown = [i for i in ids if i not in saved_ids]
        lost = [i for i in saved_ids if i not in ids]
        if len(given) > cap:
            errors[key] = f"at most {cap} {what} entries"
        elif unknown:
            errors[key] = f"unknown entry_id: {', '.join(unknown)}"
        elif len(set(ids)) != len(ids):
            errors[key] = "the same entry_id appears twice"
        elif lost:
            errors[key] = (
                f"saved entries cannot be deleted, only edited (missing: {', '.join(lost)})"
            )
        # deterministic ids: the next number after the highest saved one (none is ever deleted)
        n = max((int(i[len(prefix) :]) for i in saved_ids if i[len(prefix) :].isdigit()), default=0)
        entries = []
        for e in given:
            if not e.get("entry_id"):
                n += 1
                e = {"entry_id": f"{prefix}{n}", **{k: v for k, v in e.items() if k != "entry_id"}}
            entries.append(e)
        out[key] = entries
    return out, errors


def update_section(account: Account, section: str, data: dict, now: datetime) -> list[NewEvent]:
    """Save one profile section (a draft is fine); ``data`` is that section's schema output,
    or for "photo" the dict ``check_photo`` returned.

    The saved content replaces the section's content. Saving the same content again emits
    nothing (retries and double clicks are no-ops). Completeness crossing 100 emits
    ProfileCompleted (upwards) or ProfileBecameIncomplete (downwards) after ProfileUpdated.
    """
    _require_aware(now)
    if account.role != "candidate":
        raise Refused("A staff account has no candidate profile to maintain.",
                      {"account_id": "a staff account"})
    if section not in SECTIONS:
        raise ValidationFailed(
            "unknown profile section", {"section": f"must be one of {', '.join(SECTIONS)}"}
        )
    content = _plain(data)
    if section == "photo" and set(content) != PHOTO_KEYS:
        raise ValueError("photo data must be what check_photo returned")
    errors = _future_dates(section, content, now.astimezone(identity.SHANGHAI).date())
    if section == "basic":
        errors.update(_identity_mismatch(account, content))
    if section in _LISTS:
        content, list_errors = _keep_entries(section, account.sections.get(section, {}), content)
        errors.update(list_errors)
    if errors:
        raise ValidationFailed("some fields are not valid", errors)
    if content == account.sections.get(section):
        return []

    percent, missing = completeness({**account.sections, section: content})
    stream, account_id = account_stream(account.account_id), account.account_id
    events = [
        NewEvent(
            stream,
            "ProfileUpdated",
            {
                "account_id": account_id,
                "section": section,
                "data": content,
                "completeness": percent,
                "missing": missing,
            },
        )
    ]
    if percent == 100 and not account.complete:
        events.append(
            NewEvent(stream, "ProfileCompleted", {"account_id": account_id, "completeness": 100})
        )
    elif percent < 100 and account.complete:
        events.append(
            NewEvent(
                stream,
                "ProfileBecameIncomplete",
                {"account_id": account_id, "completeness": percent, "missing": missing},
            )
        )
    return events


# --- credentials and login ------------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5  # consecutive failures that lock the account
    lockout: timedelta = timedelta(minutes=15)


#: count failures, lock nothing (the gateway locks per username and client address)
COUNT_ONLY = LoginPolicy(max_failures=10**9)
#: consecutive failures recorded at most without locking: guessers from many addresses
#: must not grow the account's stream without end
MAX_RECORDED_FAILURES = 100


def is_locked(account: Account, now: datetime) -> bool:
    return account.locked_until is not None and now < account.locked_until


def locked_error(account: Account) -> Unauthorized:
    """The refusal for a locked account (code "locked"), naming the unlock time in Beijing time."""
    local = account.locked_until.astimezone(identity.SHANGHAI)
    if local.second or local.microsecond:  # round up: never name a minute still locked
        local += timedelta(minutes=1)
    return Unauthorized(
        f"too many failed logins: the account is locked until {local:%Y-%m-%d %H:%M} (Beijing time)",
        code="locked",
    )


def ensure_not_locked(account: Account, now: datetime):
    """Raise ``locked_error`` if locked. Check before verifying a password: a locked account
    answers the same whether or not the password is right."""
    if is_locked(account, now):
        raise locked_error(account)


def login_failed(
    account: Account, now: datetime, policy: LoginPolicy = LoginPolicy()
) -> list[NewEvent]:
    """A wrong password: count it; the ``max_failures``-th locks the account for ``lockout``."""
    _require_aware(now)
    if policy is not COUNT_ONLY:
        ensure_not_locked(account, now)
    elif account.failures >= MAX_RECORDED_FAILURES:
        return []
    # after a lockout has run out the count starts over, or one more slip would relock
    failures = 1 if account.locked_until is not None else account.failures + 1
    locked_until = now + policy.lockout if failures >= policy.max_failures else None
    return [
        NewEvent(
            account_stream(account.account_id),
            "LoginFailed",
            {
                "account_id": account.account_id,
                "failures": failures,
                "locked_until": locked_until.isoformat() if locked_until else None,
            },
        )
    ]


def login_succeeded(account: Account) -> list[NewEvent]:
    """A right password (on an unlocked account): forget earlier failures, if any."""
    if account.failures == 0 and account.locked_until is None:
        return []
    return [
        NewEvent(
            account_stream(account.account_id),
            "LoginFailuresReset",
            {"account_id": account.account_id},
        )
    ]


def change_password(account: Account, new_hash: str, now: datetime) -> list[NewEvent]:
    """修改密码: the service has checked the old password and hashed the new one. Every
    sign-in before ``now`` ends (the gateway refuses tokens issued before it)."""
    _require_aware(now)
    return [
        NewEvent(
            account_stream(account.account_id),
            "PasswordChanged",
            {"account_id": account.account_id, "password_hash": new_hash,
             "changed_at": now.isoformat()},
        )
    ]


# --- forgotten password (找回密码) ------------------------------------------------------


@dataclass(frozen=True)
class ResetPolicy:
    code_ttl: timedelta = timedelta(minutes=10)
    min_interval: timedelta = timedelta(seconds=60)  # between two codes to one account
    max_requests: int = 5  # codes per account within ``window``
    window: timedelta = timedelta(hours=1)
    max_attempts: int = 5  # wrong codes that use a code up


def reset_requests_allowed(account: Account, now: datetime,
                           policy: ResetPolicy = ResetPolicy()) -> bool:
    """Whether another code may be sent now (against SMS bombing of the owner's phone)."""
    recent = [t for t in account.reset_requests if t > now - policy.window]
    if len(recent) >= policy.max_requests:
        return False
    return not recent or now - recent[-1] >= policy.min_interval


def request_password_reset(account: Account, reset_id: str, code_hash: str, now: datetime,
                           policy: ResetPolicy = ResetPolicy()) -> list[NewEvent]:
    """找回密码: a new code for the account's mobile (the previous one, if any, no longer
    counts). Over the account's limit: nothing, silently; the caller answers the same
    either way, so the answer never tells whether an account exists."""
    _require_aware(now)
    if account.role != "candidate" or not reset_requests_allowed(account, now, policy):
        return []
    stream, expires = account_stream(account.account_id), now + policy.code_ttl
    return [
        NewEvent(stream, "PasswordResetRequested", {
            "account_id": account.account_id, "reset_id": reset_id, "code_hash": code_hash,
            "requested_at": now.isoformat(), "expires_at": expires.isoformat()}),
        # the integration event: no code, no hash; the notification service derives the code
        NewEvent(stream, "PasswordResetCodeIssued", {
            "account_id": account.account_id, "reset_id": reset_id,
            "expires_at": expires.isoformat()}),
    ]


def invalid_code() -> Unauthorized:
    return Unauthorized("验证码错误或已失效，请重新获取。 The code is wrong or no longer valid.",
                        {"code": "wrong or expired"}, code="invalid_code")


def usable_reset(account: Account | None, now: datetime,
                 policy: ResetPolicy = ResetPolicy()) -> PendingReset | None:
    """The pending reset a code may still be checked against, if any."""
    reset = account.reset if account is not None else None
    if reset is None or now >= reset.expires_at or reset.attempts >= policy.max_attempts:
        return None
    return reset


def reset_password(account: Account, code_matches, new_hash: str | None, now: datetime,
                   policy: ResetPolicy = ResetPolicy()) -> tuple[list[NewEvent], bool]:
    """Check a code and, if right, set the new password: ``(events, done)``.

    ``code_matches(reset_id, code_hash)`` says whether the given code is the reset's. A
    wrong code is counted (the ``max_attempts``-th uses the code up); no pending code, an
    expired or used-up one: nothing to record. The new password's hash is needed only
    when the code is right."""
    _require_aware(now)
    reset = usable_reset(account, now, policy)
    if reset is None:
        return [], False
    stream = account_stream(account.account_id)
    if not code_matches(reset.reset_id, reset.code_hash):
        return [NewEvent(stream, "PasswordResetCodeRejected", {
            "account_id": account.account_id, "reset_id": reset.reset_id,
            "attempts": reset.attempts + 1})], False
    if not new_hash:
        raise ValueError("the new password's hash is needed when the code is right")
    return [NewEvent(stream, "PasswordReset", {
        "account_id": account.account_id, "reset_id": reset.reset_id,
        "password_hash": new_hash, "reset_at": now.isoformat()})], True
