"""The account read model: a pure fold of the account log into two tables."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

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


class AccountProjection(Projection):
    name = "accounts"
    metadata = metadata
    history = "account"  # shared/alembic/account/
    # not the claims (uniqueness is the log's business) nor ProfileCompleted (the last
    # ProfileUpdated carries the completeness): a third of the log a rebuild need not read
    event_types = frozenset({"AccountRegistered", "StaffAccountCreated", "CredentialsSet",
                             "PasswordChanged", "ProfileUpdated", "LoginFailed",
                             "LoginFailuresReset"})

    def handle(self, event):
        p, at = event.payload, event.metadata.get("occurred_at")
        match event.type:
            case "AccountRegistered":
                yield Upsert("accounts", {"account_id": p["account_id"]}, {
                    "username": p["username"], "username_key": p["username"].lower(),
                    "name": p["name"], "id_type": p["id_type"], "id_number": p["id_number"],
                    "mobile": p["mobile"], "completeness": 0, "complete": False,
                    "missing": ALL_SECTIONS, "failures": 0, "locked_until": None,
                    "registered_at": p["registered_at"], "updated_at": at})
            case "StaffAccountCreated":
                yield Upsert("staff_accounts", {"account_id": p["account_id"]}, {
                    "username": p["username"], "username_key": p["username"].lower(),
                    "name": p["name"], "role": p["role"],
                    "registration_point": p["registration_point"], "failures": 0,
                    "locked_until": None, "created_at": p["created_at"], "updated_at": at})
            case "CredentialsSet" | "PasswordChanged":
                # the hash stays in the log for staff: their table does not copy it
                yield Update("accounts", {"account_id": p["account_id"]},
                             {"password_hash": p["password_hash"], "updated_at": at})
                yield Update("staff_accounts", {"account_id": p["account_id"]}, {"updated_at": at})
            case "ProfileUpdated":
                yield Upsert("profile_sections",
                             {"account_id": p["account_id"], "section": p["section"]},
                             {"data": p["data"], "updated_at": at})
                yield Update("accounts", {"account_id": p["account_id"]}, {
                    "completeness": p["completeness"], "complete": p["completeness"] == 100,
                    "missing": p["missing"], "updated_at": at})
            case "LoginFailed":  # an account id is in one of the two tables: no row, no effect
                for table in ("accounts", "staff_accounts"):
                    yield Update(table, {"account_id": p["account_id"]},
                                 {"failures": p["failures"], "locked_until": p["locked_until"]})
            case "LoginFailuresReset":
                for table in ("accounts", "staff_accounts"):
                    yield Update(table, {"account_id": p["account_id"]},
                                 {"failures": 0, "locked_until": None})
