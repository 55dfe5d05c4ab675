"""``kaowu history``: the whole story of one candidate across every service, in time order.

How it finds the story (an operator tool, not a query path: it costs a full read of every
service's log over RPC, i.e. O(all events) per call; fine for one candidate now and then,
wrong for bulk use):

1. Resolve the argument. An application id (``<session>.<account id>``) names its account;
   a 32-hex account id names itself; anything else is taken as an ID number (证件号码) and
   looked up by scanning the account service's log for ``AccountRegistered`` with that
   number (no lookup RPC is needed, so this works against any account service version).
2. Scan every service's log (pipeline order, upstream first) and keep each event whose
   stream or payload mentions one of the candidate's identifiers. Identifiers found on the
   way (application ids, ticket numbers, qualification ids, certificate numbers) join the
   set, so events that name only a ticket or certificate are found too.
3. Order by when each event occurred (ties: pipeline order, then log position).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cli.events import LogReader, occurred_at
from cli.status import rank

ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
# payload keys whose values identify the candidate's things in other services
DERIVED_KEYS = ("application_id", "ticket_number", "qualification_id", "certificate_number")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Target:
    """Who the history is about."""

    query_kind: str  # id_number | application | account
    account_ids: set[str] = field(default_factory=set)
    application_ids: set[str] = field(default_factory=set)
    id_number: str | None = None
    name: str | None = None

    @property
    def ids(self) -> set[str]:
        return self.account_ids | self.application_ids


def classify(text: str) -> Target:
    """What the operator typed: an application id, an account id, or an ID number."""
    s = unicodedata.normalize("NFKC", text).strip()
    if "." in s and ACCOUNT_ID.fullmatch(s.rsplit(".", 1)[1]):
        return Target("application", account_ids={s.rsplit(".", 1)[1]}, application_ids={s})
    if ACCOUNT_ID.fullmatch(s):
        return Target("account", account_ids={s})
    return Target("id_number", id_number=s.upper())


def resolve(target: Target, call, cost: dict | None = None) -> Target:
    """Fill in the account(s) of an ID number by scanning the account log."""
    if target.query_kind != "id_number":
        return target
    reader = LogReader(call, "account", types=["AccountRegistered"])
    for event in reader.read():
        p = event.get("payload") or {}
        if str(p.get("id_number", "")).upper() == target.id_number:
            target.account_ids.add(p["account_id"])
            target.name = target.name or p.get("name")
    if cost is not None:
        cost["account"] = cost.get("account", 0) + reader.scanned
    return target


def mentions(value, ids: set[str]) -> bool:
    if isinstance(value, str):
        return value in ids
    if isinstance(value, dict):
        return any(mentions(v, ids) for v in value.values())
    if isinstance(value, list | tuple):
        return any(mentions(v, ids) for v in value)
    return False


def relevant(event: dict, ids: set[str], account_ids: set[str]) -> bool:
    """Whether the event is about the candidate. An event that names another account is
    not, whatever else it shares (ticket numbers repeat across sessions of one year)."""
    payload = event.get("payload") or {}
    owner = payload.get("account_id")
    if isinstance(owner, str) and owner and owner not in account_ids:
        return False
    sid = event.get("stream_id") or ""
    # an account id (32 hex) is unique even inside other ids; others must end the stream id
    if any(a in sid for a in account_ids) or any(sid == i or sid.endswith("-" + i) for i in ids):
        return True
    return mentions(payload, ids)


def harvest(event: dict, ids: set[str]):
    """Identifiers of the candidate's things that this (relevant) event names."""
    p = event.get("payload") or {}
    for key in DERIVED_KEYS:
        v = p.get(key)
        if isinstance(v, str) and v:
            ids.add(v)


@dataclass
class Story:
    target: Target
    events: list[tuple[str, dict]]  # (service, event), in time order
    scanned: dict[str, int]  # service -> events read
    unreadable: dict[str, str]  # service -> why its log could not be read


def collect(target: Target, services: list[str], call, scanned: dict | None = None) -> Story:
    ids = set(target.ids)
    found: list[tuple[str, dict]] = []
    scanned = dict(scanned or {})
    unreadable = {}
    for service in sorted(services, key=rank):
        reader = LogReader(call, service)
        try:
            for event in reader.read():
                if relevant(event, ids, target.account_ids):
                    harvest(event, ids)
                    found.append((service, event))
                    p = event.get("payload") or {}
                    if event.get("type") == "AccountRegistered":
                        target.name = target.name or p.get("name")
                        target.id_number = target.id_number or p.get("id_number")
                    if isinstance(p.get("application_id"), str):
                        target.application_ids.add(p["application_id"])
        except Exception as exc:  # a service down: the story is incomplete, say so
            unreadable[service] = str(exc)
        scanned[service] = scanned.get(service, 0) + reader.scanned
    return Story(target, in_time_order(found), scanned, unreadable)


def in_time_order(found: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    return sorted(found, key=lambda se: (occurred_at(se[1]) or _EPOCH, rank(se[0]),
                                         int(se[1].get("position", 0))))
