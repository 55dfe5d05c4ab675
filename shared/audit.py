"""Searching an audit trail (who, when, what, why): the same filters on every service's
``audit_trail`` table (columns ``at``, ``session_id``, ``staff_id``, ``application_id``)."""

from shared.clock import iso


def search(query, table, cmd: dict):
    """``query`` narrowed by the audit query ``cmd`` (its schema validated it): a session,
    a staff member, an application or a candidate (their account, every session), and a
    time range ``since`` (inclusive) .. ``until`` (exclusive). Newest first."""
    for key in ("session_id", "staff_id", "application_id"):
        if cmd.get(key):
            query = query.where(table.c[key] == cmd[key])
    if cmd.get("account_id"):  # application ids are ``<session>.<account>``; accounts are alnum
        query = query.where(table.c.application_id.like(f"%.{cmd['account_id']}"))
    if cmd.get("since"):
        query = query.where(table.c.at >= iso(cmd["since"]))
    if cmd.get("until"):
        query = query.where(table.c.at < iso(cmd["until"]))
    return query.order_by(table.c.at.desc(), table.c.event_id).limit(cmd["limit"])
