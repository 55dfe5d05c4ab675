"""The operator dashboard's figures (运维看板), shaped from the services' answers. Pure: the
service gathers the RPC answers (``rpc.gather``) and passes them in with ``now``.

Every figure says where it comes from and whether that source answered: a service that
is down leaves its figures ``None`` and its section ``available: false``, never a broken
page.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.clock import SHANGHAI, parse_iso
from shared.session import WINDOW_LABELS

SERVICES = ("account", "registration", "verification", "admission", "scoring", "certificate",
            "notification")
ONE_SECOND = timedelta(seconds=1)

# (key, label, source, how to read it from that source's answer)
FUNNEL = (
    ("accounts", "账号 accounts", "accounts", lambda a: a["accounts"]),
    ("complete_profiles", "信息完整 complete profiles", "accounts", lambda a: a["complete_profiles"]),
    ("applications", "报名 applications", "applications", lambda a: sum(a.values())),
    ("confirmed", "核对确认 confirmed", "applications", lambda a: a.get("confirmed", 0)),
    ("tickets_printed", "打印准考证 tickets printed", "admission", lambda a: a["printed"]),
    ("checked_in", "签到 checked in (candidate × subject)", "admission", lambda a: a["checked_in"]),
    ("qualified", "合格 qualified", "scoring", lambda a: a["qualified"]),
    ("certificates", "证书 certificates issued", "certificates", lambda a: a["issued"]),
)


def _window_times(w: dict) -> tuple[datetime, datetime]:
    return parse_iso(w["start"]), parse_iso(w["end"])


def pick_session(sessions: list[dict], now: datetime) -> dict | None:
    """The session the dashboard shows by default: one with a window open now (the most
    recently opened), else the next to open a window, else the one that closed last."""
    best_open, best_next, best_past = None, None, None
    for s in sessions:
        spans = [_window_times(w) for w in (s.get("windows") or {}).values()]
        if not spans:
            continue
        opened = [start for start, end in spans if start <= now < end + ONE_SECOND]
        upcoming = [start for start, _ in spans if start > now]
        if opened and (best_open is None or max(opened) > best_open[0]):
            best_open = (max(opened), s)
        elif upcoming and (best_next is None or min(upcoming) < best_next[0]):
            best_next = (min(upcoming), s)
        last = max(end for _, end in spans)
        if best_past is None or last > best_past[0]:
            best_past = (last, s)
    for choice in (best_open, best_next, best_past):
        if choice is not None:
            return choice[1]
    return None


def next_deadline(session: dict, now: datetime) -> dict | None:
    """The next moment that matters: the soonest end of a window open now (its last second
    still counts), else the soonest start of a window to come."""
    closing, opening = [], []
    for name, w in (session.get("windows") or {}).items():
        start, end = _window_times(w)
        if start <= now < end + ONE_SECOND:
            closing.append((end + ONE_SECOND, name, end))
        elif start > now:
            opening.append((start, name, start))
    if closing:
        at, name, shown = min(closing)
        kind = "closes"
    elif opening:
        at, name, shown = min(opening)
        kind = "opens"
    else:
        return None
    return {"window": name, "label": WINDOW_LABELS.get(name, name), "kind": kind,
            "at": shown.isoformat(), "seconds": max(int((at - now).total_seconds()), 0)}


def windows(session: dict, now: datetime) -> list[dict]:
    """Every window of the session in time order, with its state (open, upcoming, closed)
    and the seconds until it closes (open) or opens (upcoming): the countdowns."""
    out = []
    for name, w in (session.get("windows") or {}).items():
        start, end = _window_times(w)
        close = end + ONE_SECOND  # its last second still counts
        state = "open" if start <= now < close else ("upcoming" if start > now else "closed")
        out.append({"window": name, "label": WINDOW_LABELS.get(name, name), "state": state,
                    "start": start.isoformat(), "end": end.isoformat(),
                    "closes_in": int((close - now).total_seconds()) if state == "open" else None,
                    "opens_in": int((start - now).total_seconds())
                    if state == "upcoming" else None})
    return sorted(out, key=lambda x: (x["start"], x["end"]))


def conversions(funnel: list[dict]) -> list[dict]:
    """Each funnel step with its conversion: per cent of the step before (``rate``) and of
    the first step (``of_first``); None where a figure is missing or the base is 0."""
    first = funnel[0]["value"] if funnel else None
    out, before = [], None
    for step in funnel:
        value = step["value"]

        def pct(base, value=value):
            return (round(100 * value / base, 1)
                    if value is not None and base not in (None, 0) else None)

        out.append({**step, "rate": pct(before) if out else None, "of_first": pct(first)})
        before = value
    return out


# the arrivals chart (每小时到达): (series, label, source answer)
ARRIVALS = (
    ("registrations", "注册 registrations", "arrivals.account"),
    ("applications", "报名 applications", "arrivals.registration"),
    ("confirmations", "核对确认 confirmations", "arrivals.registration"),
)
MAX_HOURS = 7 * 24  # a wall screen shows the last week of the session at most
ONE_HOUR = timedelta(hours=1)


def _hour(t: datetime) -> datetime:
    return t.astimezone(SHANGHAI).replace(minute=0, second=0, microsecond=0)


def arrivals(session: dict | None, now: datetime, answers: dict) -> dict:
    """Arrivals per hour (Asia/Shanghai) over the session: registrations, applications and
    confirmations, from the services' counts per hour (``arrivals_per_hour``). The hours run
    from the application window's opening to now or its close, whichever is first (the
    last ``MAX_HOURS`` of them); what came before the first hour shown is in ``earlier``.
    A series whose service did not answer is ``None`` in every hour."""
    counts, available = {}, {}
    for key, _label, source in ARRIVALS:
        state, value = answers.get(source, ("down", "not asked"))
        got = value.get(key) if state == "ok" and isinstance(value, dict) else None
        available[key] = isinstance(got, dict)
        counts[key] = {_hour(parse_iso(h)): int(n) for h, n in got.items()} \
            if available[key] else {}
    w = ((session or {}).get("windows") or {}).get("application")
    if w is not None:
        start, end = _window_times(w)
        first, last = _hour(start), _hour(min(now, end))
    else:
        seen = [h for c in counts.values() for h in c]
        first, last = (min(seen), _hour(now)) if seen else (_hour(now), _hour(now))
    if last < first:  # the window has not opened yet
        last = first
    first = max(first, last - (MAX_HOURS - 1) * ONE_HOUR)
    hours, h = [], first
    while h <= last:
        hours.append({"hour": h.isoformat(), "label": h.strftime("%m-%d %H:00"),
                      **{k: counts[k].get(h, 0) if available[k] else None for k in counts}})
        h += ONE_HOUR
    earlier = {k: sum(n for t, n in counts[k].items() if t < first) if available[k] else None
               for k in counts}
    totals = {k: sum(x[k] for x in hours) if available[k] else None for k in counts}
    return {"series": [{"key": k, "label": label, "available": available[k]}
                       for k, label, _ in ARRIVALS],
            "hours": hours, "earlier": earlier, "totals": totals,
            "peak": max([x[k] or 0 for x in hours for k in counts] or [0])}


def service_health(statuses: dict) -> dict:
    """Per service: up or not, its log head, relay lag, and each consumer's lag behind the
    upstream's head (the upstream's head as its own status said it)."""
    heads = {name: body["head"] for name, (state, body) in statuses.items() if state == "ok"}
    out = {}
    for name, (state, body) in statuses.items():
        if state != "ok":
            out[name] = {"up": False, "error": body}
            continue
        consumers = []
        for upstream, position in sorted((body.get("tracking") or {}).items()):
            head = heads.get(upstream)
            consumers.append({"upstream": upstream, "position": position, "upstream_head": head,
                              "lag": None if head is None else max(head - position, 0)})
        out[name] = {"up": True, "head": body["head"], "relay_position": body["relay_position"],
                     "relay_lag": body["relay_lag"], "consumers": consumers}
    return out


def shape(now: datetime, sessions: list[dict], session: dict | None, answers: dict,
          queues: dict, statuses: dict) -> dict:
    """The dashboard's JSON. ``answers``: ``{source: ("ok", value) | ("down", why)}`` for
    accounts, applications, cases, enquiries, admission, scoring, certificates,
    notifications; ``queues``: ``{point code: ("ok", [cases]) | ("down", why)}``."""

    def section(source):
        state, value = answers.get(source, ("down", "not asked"))
        return ({"available": True, "counts": value} if state == "ok"
                else {"available": False, "error": value})

    funnel = []
    for key, label, source, read in FUNNEL:
        state, value = answers.get(source, ("down", "not asked"))
        figure = None
        if state == "ok":
            try:
                figure = int(read(value))
            except (KeyError, TypeError, ValueError):
                figure = None
        funnel.append({"key": key, "label": label, "source": source, "value": figure,
                       "available": figure is not None})

    points = (session or {}).get("registration_points") or {}
    queue_rows = []
    for code, (state, value) in sorted(queues.items()):
        waits = [c.get("waiting_s") for c in value or () if isinstance(c, dict)] \
            if state == "ok" else []
        waits = [w for w in waits if isinstance(w, int)]
        queue_rows.append({"code": code, "name": (points.get(code) or {}).get("name", code),
                           "waiting": len(value) if state == "ok" else None,
                           "oldest_wait_s": max(waits) if waits else None,
                           "available": state == "ok"})

    current = None
    if session is not None:
        current = {"session_id": session["session_id"], "name": session.get("name"),
                   "phase": session.get("phase"),
                   "phase_label": WINDOW_LABELS.get(session.get("phase"), "—")
                   if session.get("phase") else "between windows",
                   "deadline": next_deadline(session, now),
                   "windows": windows(session, now)}
    return {
        "now": now.isoformat(),
        "sessions": [{"session_id": s["session_id"], "name": s.get("name")} for s in sessions],
        "session": current,
        "funnel": conversions(funnel),
        "applications": section("applications"),
        "cases": section("cases"),
        "enquiries": section("enquiries"),
        "admission": section("admission"),
        "scoring": section("scoring"),
        "certificates": section("certificates"),
        "notifications": section("notifications"),
        "accounts": section("accounts"),
        "manual_queues": queue_rows,
        "arrivals": arrivals(session, now, answers) if session is not None else None,
        "services": service_health(statuses),
    }
