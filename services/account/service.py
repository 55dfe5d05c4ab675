"""The account service's entrypoints (thin): validate, call the domain, append.

Uniqueness of ID number, mobile and username is decided twice on purpose: first against
the read model, for a clear answer naming the field; then by the claim streams appended
with the account (expected empty), which makes it race-safe across processes.
"""

import base64
import uuid

from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from services.account import domain
from services.account.identity import username_key, validate_mobile
from services.account.photo import check_photo
from services.account.projection import (
    AccountProjection,
    accounts,
    profile_sections,
    staff_accounts,
)
from services.account.schemas import (
    REGISTRY,
    SECTION_SCHEMAS,
    STAFF_ROLES,
    ChangePasswordSchema,
    CreateStaffSchema,
    LoginSchema,
    RegisterSchema,
    ResetFinishSchema,
    ResetStartSchema,
)
from shared.clock import SHANGHAI, count_by_hour
from shared.dependencies import EventStoreProvider
from shared.dev_secrets import PASSWORD_RESET, secret
from shared.errors import Conflict, NotFound, Refused, Unauthorized, ValidationFailed
from shared.logging import get_logger
from shared.passwords import ThreadedHasher
from shared.reset_codes import code_for, code_hash, matches
from shared.service import EventSourcedService, command, load

log = get_logger(__name__)

RESET_STARTED = {"accepted": True, "message": (
    "如果用户名与手机号和某个账号相符，验证码已通过短信发送至该手机，10分钟内有效。"
    " If the username and mobile match an account, a code valid for 10 minutes was sent.")}

_DUPLICATE = {
    "id_number": "An account with this ID number already exists: one account per person.",
    "mobile": "This mobile number is already used by another account.",
    "username": "This username is taken; choose another.",
}


class Passwords(DependencyProvider):
    """argon2id hashing, run in real threads so the hub keeps serving while it works, and
    at most ``PASSWORD_HASH_CONCURRENCY`` hashes at once (default: the cores)."""

    def setup(self):
        self.hasher = ThreadedHasher.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.hasher


class ResetKey(DependencyProvider):
    """``PASSWORD_RESET_KEY``: the secret reset codes are derived from (shared with the
    notification service, which sends them; ``shared.dev_secrets``)."""

    def setup(self):
        self.key, _configured = secret(PASSWORD_RESET, self.container.config)

    def get_dependency(self, worker_ctx):
        return self.key


class AccountService(EventSourcedService):
    name = "account"
    store = EventStoreProvider(REGISTRY, projections=[AccountProjection()])
    passwords = Passwords()
    reset_key = ResetKey()

    # -- commands ------------------------------------------------------------------------

    @command
    def register(self, data):
        """注册账号: a new account; returns its id."""
        now = self.clock.now()
        cmd = load(RegisterSchema(today=now.astimezone(SHANGHAI).date()), data)
        self._refuse_duplicates(cmd)
        password_hash = self.passwords.hash(cmd["password"])
        account_id = uuid.uuid4().hex

        def decide(tx):
            events = domain.register(account_id, cmd, password_hash, now)
            tx.append(events, {e.stream_id: 0 for e in events})

        try:
            self.store.execute(decide, retries=1)
        except Conflict:
            # lost a race on a claim: the winner is in the read model now, so name the field
            self._refuse_duplicates(cmd)
            raise
        return {"account_id": account_id}

    @command
    def create_staff(self, data):
        """工作人员账号: an operator makes a staff account (``kaowu staff add``) for
        registration-point staff (bound to one point), the exam authority or an operator."""
        now = self.clock.now()
        cmd = load(CreateStaffSchema(), data)
        self._refuse_taken_username(cmd["username"])
        password_hash = self.passwords.hash(cmd["password"])
        account_id = uuid.uuid4().hex

        def decide(tx):
            events = domain.create_staff(account_id, cmd, password_hash, now)
            tx.append(events, {e.stream_id: 0 for e in events})

        try:
            self.store.execute(decide, retries=1)
        except Conflict:
            self._refuse_taken_username(cmd["username"])  # lost the race: say so by name
            raise
        return {"account_id": account_id, "username": cmd["username"], "name": cmd["name"],
                "role": cmd["role"], "registration_point": cmd["registration_point"]}

    @command
    def list_staff(self):
        """Every staff account (no credentials), for operators."""
        with self.store.read_engine.connect() as c:
            rows = c.execute(select(staff_accounts).order_by(staff_accounts.c.username_key)).all()
        return [{"account_id": r.account_id, "username": r.username, "name": r.name,
                 "role": r.role, "registration_point": r.registration_point,
                 "locked_until": r.locked_until, "created_at": r.created_at} for r in rows]

    @command
    def login(self, data):
        """登录账号: check credentials; repeated failures lock the account for a while.
        Candidates and staff log in the same way; the answer names the ``role`` (and, for
        registration-point staff, their ``registration_point``)."""
        cmd = load(LoginSchema(), data)
        key = username_key(cmd["username"])
        row = (self._row(accounts.c.username_key == key)
               or self._row(staff_accounts.c.username_key == key, staff_accounts))
        wrong = Unauthorized("The username or password is wrong.")
        if row is None:
            self.passwords.verify_dummy(cmd["password"])  # same time as a real check
            raise wrong
        now = self.clock.now()
        stream = domain.account_stream(row.account_id)
        account = domain.fold(self.store.read_stream(stream))
        ok = self.passwords.verify(account.password_hash, cmd["password"])

        def decide(tx):
            acc = domain.fold(tx.read_stream(stream))
            # failures are counted, but lock nothing here: the gateway locks a (username,
            # client address) pair, so nobody can lock the owner out (services/gateway/README.md)
            events = (domain.login_succeeded(acc) if ok
                      else domain.login_failed(acc, now, domain.COUNT_ONLY))
            tx.append(events, {stream: acc.version})
            return acc

        acc = self.store.execute(decide)
        if not ok:
            raise wrong
        answer = {"account_id": acc.account_id, "name": acc.name, "username": acc.username,
                  "role": acc.role, "registration_point": acc.registration_point}
        if acc.role == "candidate":
            answer["completeness"] = acc.completeness
        return answer

    @command
    def change_password(self, account_id, data):
        cmd = load(ChangePasswordSchema(), data)
        stream = domain.account_stream(self._account_id(account_id))
        account = domain.fold(self.store.read_stream(stream))
        if account is None:
            raise NotFound("No such account.", {"account_id": account_id})
        if not self.passwords.verify(account.password_hash, cmd["old_password"]):
            raise Unauthorized("The current password is wrong.", {"old_password": "wrong password"})
        new_hash = self.passwords.hash(cmd["new_password"])
        now = self.clock.now()

        def decide(tx):
            acc = domain.fold(tx.read_stream(stream))
            tx.append(domain.change_password(acc, new_hash, now), {stream: acc.version})

        self.store.execute(decide)
        return {"account_id": account.account_id, "changed": True}

    # -- forgotten password (找回密码) ----------------------------------------------------

    @command
    def start_password_reset(self, data):
        """找回密码: send a six-digit code to the account's mobile, if the username and the
        mobile name one candidate account. The answer is the same whether or not they do,
        and whether or not the account's own limit let a code go (no argon2 either way)."""
        cmd = load(ResetStartSchema(), data)
        row = self._row(accounts.c.username_key == username_key(cmd["username"]))
        try:
            mobile = validate_mobile(cmd["mobile"])
        except ValueError:
            mobile = None
        if row is None or mobile is None or row.mobile != mobile:
            return dict(RESET_STARTED)
        now = self.clock.now()
        stream = domain.account_stream(row.account_id)
        reset_id = uuid.uuid4().hex
        hashed = code_hash(self.reset_key, reset_id, code_for(self.reset_key, reset_id))

        def decide(tx):
            acc = domain.fold(tx.read_stream(stream))
            events = domain.request_password_reset(acc, reset_id, hashed, now)
            if events:
                tx.append(events, {stream: acc.version})
            return bool(events)

        if not self.store.execute(decide):
            log.info("account.reset_not_sent", account_id=row.account_id,
                     reason="the account's code limit")
        return dict(RESET_STARTED)

    @command
    def finish_password_reset(self, data):
        """Set a new password with the code sent by ``start_password_reset`` (once: the
        code is used up by it; five wrong codes use it up too). Every earlier sign-in ends.
        A wrong, expired or used code and an unknown username all answer ``invalid_code``."""
        cmd = load(ResetFinishSchema(), data)
        now = self.clock.now()
        row = self._row(accounts.c.username_key == username_key(cmd["username"]))
        key = self.reset_key

        def code_matches(reset_id, expected):
            return matches(key, reset_id, cmd["code"], expected)

        if row is None:
            raise domain.invalid_code()
        stream = domain.account_stream(row.account_id)
        account = domain.fold(self.store.read_stream(stream))
        reset = domain.usable_reset(account, now)
        right = reset is not None and code_matches(reset.reset_id, reset.code_hash)
        new_hash = self.passwords.hash(cmd["new_password"]) if right else None

        def decide(tx):
            acc = domain.fold(tx.read_stream(stream))
            events, done = domain.reset_password(acc, code_matches, new_hash, now)
            if events:
                tx.append(events, {stream: acc.version})
            return done

        if not self.store.execute(decide):
            raise domain.invalid_code()
        return {"account_id": row.account_id, "reset": True}

    @command
    def credentials_changed_at(self, account_id):
        """When the account's password last changed (POSIX seconds), or None: the gateway
        refuses tokens of sign-ins before it."""
        account = domain.fold(self.store.read_stream(
            domain.account_stream(self._account_id(account_id))))
        changed = account.credentials_changed_at if account is not None else None
        return changed.timestamp() if changed is not None else None

    @command
    def update_profile_section(self, account_id, section, data):
        """信息维护: save one profile section (a draft may be partial)."""
        account_id = self._account_id(account_id)
        if not isinstance(section, str) or section not in SECTION_SCHEMAS:
            raise ValidationFailed(f"Unknown profile section {str(section)[:40]!r}.",
                                   {"section": f"one of {sorted(SECTION_SCHEMAS)}"})
        values = load(SECTION_SCHEMAS[section](), data)
        blob = None
        if section == "photo":
            raw = base64.b64decode(values["jpeg_base64"])  # the schema checked size and encoding
            values = check_photo(raw)
            blob = (values["sha256"], "image/jpeg", raw)
        stream = domain.account_stream(account_id)
        now = self.clock.now()

        def decide(tx):
            history = tx.read_stream(stream)
            acc = domain.fold(history)
            if acc is None:
                raise NotFound("No such account.", {"account_id": account_id})
            events = domain.update_section(acc, section, values, now)
            if blob:
                tx.put_blob(*blob)
            return domain.fold(history + tx.append(events, {stream: acc.version}))

        acc = self.store.execute(decide)
        # the answer comes from the aggregate just decided on: no second trip to the database
        return {"account_id": acc.account_id, "section": section,
                "data": acc.sections.get(section), "completeness": acc.completeness,
                "complete": acc.completeness == 100, "missing": acc.missing}

    # -- queries -------------------------------------------------------------------------

    @command
    def get_profile(self, account_id):
        account_id = self._account_id(account_id)
        row = self._row(accounts.c.account_id == account_id)
        if row is None:
            raise NotFound("No such account.", {"account_id": account_id})
        with self.store.read_engine.connect() as c:
            sections = {r.section: r.data for r in c.execute(
                select(profile_sections).where(profile_sections.c.account_id == account_id))}
        return {
            "account_id": row.account_id, "username": row.username, "name": row.name,
            "id_type": row.id_type, "id_number": row.id_number, "mobile": row.mobile,
            "completeness": row.completeness, "complete": row.complete, "missing": row.missing,
            "sections": sections, "registered_at": row.registered_at,
        }

    @command
    def get_photo(self, account_id):
        profile = self.get_profile(account_id)
        photo = profile["sections"].get("photo")
        blob = photo and self.store.get_blob(photo["sha256"])
        if not blob:
            raise NotFound("No photo uploaded yet.")
        return {"content_type": blob["content_type"],
                "jpeg_base64": base64.b64encode(blob["data"]).decode()}

    @command
    def account_counts(self):
        """For the dashboard's funnel: candidate accounts, complete profiles, staff by role.
        (Accounts belong to no exam session.)"""
        counts = self.business_counts()
        with self.store.read_engine.connect() as c:
            staff = dict(c.execute(select(staff_accounts.c.role, func.count()).group_by(
                staff_accounts.c.role)).all())
        return {"accounts": counts["accounts"],
                "complete_profiles": counts["profiles"]["complete"],
                "incomplete_profiles": counts["profiles"]["incomplete"],
                "staff": {role: staff.get(role, 0) for role in STAFF_ROLES}}

    @command
    def arrivals_per_hour(self):
        """For the dashboard's arrivals chart: candidate accounts registered per hour
        (Asia/Shanghai), ``{"registrations": {hour start: count}}``."""
        with self.store.read_engine.connect() as c:
            times = c.execute(select(accounts.c.registered_at)).scalars().all()
        return {"registrations": count_by_hour(times)}

    def business_counts(self):
        with self.store.read_engine.connect() as c:
            rows = dict(c.execute(select(accounts.c.complete, func.count()).group_by(
                accounts.c.complete)).all())
        return {"accounts": sum(rows.values()),
                "profiles": {"complete": rows.get(True, 0), "incomplete": rows.get(False, 0)}}

    # -- helpers -------------------------------------------------------------------------

    def _row(self, where, table=accounts):
        with self.store.read_engine.connect() as c:
            return c.execute(select(table).where(where)).first()

    def _refuse_taken_username(self, username):
        key = username_key(username)
        if self._row(accounts.c.username_key == key) or self._row(
                staff_accounts.c.username_key == key, staff_accounts):
            raise Refused(_DUPLICATE["username"], {"username": _DUPLICATE["username"]})

    @staticmethod
    def _account_id(account_id):
        if not isinstance(account_id, str) or not (1 <= len(account_id) <= 64) or not account_id.isalnum():
            raise ValidationFailed("Not an account id.", {"account_id": "expected the id register returned"})
        return account_id

    def _refuse_duplicates(self, cmd):
        with self.store.read_engine.connect() as c:
            taken = c.execute(select(accounts.c.id_type, accounts.c.id_number, accounts.c.mobile,
                                     accounts.c.username_key).where(
                (accounts.c.username_key == username_key(cmd["username"]))
                | ((accounts.c.id_type == cmd["id_type"]) & (accounts.c.id_number == cmd["id_number"]))
                | (accounts.c.mobile == cmd["mobile"]))).all()
        fields = {}
        for r in taken:
            if (r.id_type, r.id_number) == (cmd["id_type"], cmd["id_number"]):
                fields["id_number"] = _DUPLICATE["id_number"]
            if r.mobile == cmd["mobile"]:
                fields["mobile"] = _DUPLICATE["mobile"]
            if r.username_key == username_key(cmd["username"]):
                fields["username"] = _DUPLICATE["username"]
        if "username" not in fields and self._row(
                staff_accounts.c.username_key == username_key(cmd["username"]), staff_accounts):
            fields["username"] = _DUPLICATE["username"]
        if fields:
            raise Refused(next(iter(fields.values())) if len(fields) == 1
                          else "These details are already registered to another account.", fields)
