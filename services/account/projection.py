"""The account read model: a pure fold of the account log into two tables."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

from services.account.domain import ACCOUNT
from shared.evolve import Columns
from shared.projection import Projection, Update, Upsert

metadata = MetaData()

accounts = Table(
    "accounts", metadata,
    Column("account_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("username_key", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("id_type", String(32), nullable=False),
    Column("id_number", String(32), nullable=False),
    Column("mobile", String(20), nullable=False),
    Column("password_hash", String(200)),
    Column("completeness", Integer, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("missing", JSON, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", String(40)),
    Column("registered_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_accounts_username_key", "username_key"),
    Index("ix_accounts_identity", "id_type", "id_number"),
    Index("ix_accounts_mobile", "mobile"),
)

profile_sections = Table(
    "profile_sections", metadata,
    Column("account_id", String(64), primary_key=True),
    Column("section", String(20), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", String(40), nullable=False),
)

# staff accounts (工作人员): registration-point staff, the exam authority, operators
staff_accounts = Table(
    "staff_accounts", metadata,
    Column("account_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("username_key", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("registration_point", String(20)),
    Column("failures", Integer, nullable=False),
    Column("locked_until", String(40)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_staff_accounts_username_key", "username_key"),
)

ALL_SECTIONS = ["photo", "basic", "education", "work", "contact"]


def _iso(value):
    return None if value is None else value.isoformat()


# an Account's fields as each table keeps them (what ``domain.ACCOUNT`` says of each event)
_PERSON = {"username": ["username", ("username_key", str.lower)], "name": "name",
           "failures": "failures", "locked_until": ("locked_until", _iso)}
COLUMNS = {
    "accounts": Columns({**_PERSON, "id_type": "id_type", "id_number": "id_number", "mobile": "mobile",
                 "password_hash": "password_hash", "completeness": "completeness",
                 "complete": "complete", "registered_at": ("registered_at", _iso)}),
    # the hash stays in the log for staff: their table does not copy it
    "staff_accounts": Columns({**_PERSON, "role": "role",
                               "registration_point": "registration_point",
                               "registered_at": ("created_at", _iso)}),
}
OPENS = {"AccountRegistered": "accounts", "StaffAccountCreated": "staff_accounts"}


class AccountProjection(Projection):
    name = "accounts"
    metadata = metadata
    history = "account"  # shared/alembic/account/
    # not the claims (uniqueness is the log's business) nor ProfileCompleted (the last
    # ProfileUpdated carries the completeness), nor the reset codes: a third of the log a
    # rebuild need not read
    event_types = frozenset({"AccountRegistered", "StaffAccountCreated", "CredentialsSet",
                             "PasswordChanged", "PasswordReset", "ProfileUpdated",
                             "LoginFailed", "LoginFailuresReset"})

    def __init__(self):
        self._touched: dict[str, tuple[str, ...]] = {}

    def handle(self, event):
        # a list, not a generator: a rebuild calls this per event
        fields = ACCOUNT.changes(event)
        if fields is None:
            return ()
        p, t, at = event.payload, event.type, event.metadata.get("occurred_at")
        key = {"account_id": p["account_id"]}
        table = OPENS.get(t)
        if table is not None:
            values = COLUMNS[table](fields)
            values["updated_at"] = at
            if table == "accounts":
                values["missing"] = ALL_SECTIONS
            return (Upsert(table, key, values),)
        out = []
        if t == "ProfileUpdated":
            out.append(Upsert("profile_sections", {**key, "section": p["section"]},
                              {"data": p["data"], "updated_at": at}))
        # an account id is in one of the two tables: no row, no effect
        tables = self._touched.get(t)
        if tables is None:
            tables = self._tables(t, fields)
        for table in tables:
            values = COLUMNS[table](fields)
            values["updated_at"] = at
            if t == "ProfileUpdated":
                values["missing"] = p["missing"]
            out.append(Update(table, key, values))
        return out

    def _tables(self, event_type: str, fields: dict) -> tuple[str, ...]:
        """The tables whose columns an event of ``event_type`` sets (a step sets the same
        fields every time; worked out once per type)."""
        tables = self._touched[event_type] = tuple(
            table for table, columns in COLUMNS.items() if columns.names & fields.keys())
        return tables
