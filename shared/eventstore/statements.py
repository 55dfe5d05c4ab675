"""The statements commands, consumers, the relay and reads run on every call, built once.

Built per call, a ``select`` costs its construction and its cache key (SQLAlchemy finds the
compiled form by that key) every time: a large share of a command's Python time. Built
here once, each has its cache key memoized and its compiled form in the engine's cache; a
call only binds its parameters (``bindparam`` names, given at execution).
"""

from sqlalchemy import bindparam, func, select, update

from shared.eventstore.tables import (
    events_table,
    log_head,
    log_identity,
    relay_table,
    tracking_table,
)

_by_stream = events_table.c.stream_id == bindparam("stream_id")

#: a stream's events in order (``stream_id``)
STREAM = select(events_table).where(_by_stream).order_by(events_table.c.stream_version)

#: a stream's last version and its position (``stream_id``); no row: the stream is empty
STREAM_HEAD = (select(events_table.c.stream_version, events_table.c.position).where(_by_stream)
               .order_by(events_table.c.stream_version.desc()).limit(1))


# the same two on the driver's cursor (``engine.driver_rows``, PostgreSQL): the columns and
# order of the two above
PG_STREAM = ("SELECT position, stream_id, stream_version, type, schema_version, payload, "
             "metadata FROM events WHERE stream_id = %s ORDER BY stream_version")
PG_STREAM_HEAD = ("SELECT stream_version, position FROM events WHERE stream_id = %s "
                  "ORDER BY stream_version DESC LIMIT 1")


def _events_after(types: bool, stream: bool):
    q = select(events_table).where(events_table.c.position > bindparam("after"))
    if types:
        q = q.where(events_table.c.type.in_(bindparam("types", expanding=True)))
    if stream:
        q = q.where(_by_stream)
    return q.order_by(events_table.c.position).limit(bindparam("limit"))


#: the events after ``after``, at most ``limit``; keyed by (filtered by ``types``, by ``stream_id``)
EVENTS_AFTER = {(types, stream): _events_after(types, stream)
                for types in (False, True) for stream in (False, True)}

#: the last position of each event type after ``after`` up to ``upto`` (the relay's map of
#: where each type was last seen, ``shared.relay``)
LAST_OF_TYPES = (select(events_table.c.type, func.max(events_table.c.position))
                 .where(events_table.c.position > bindparam("after"),
                        events_table.c.position <= bindparam("upto"))
                 .group_by(events_table.c.type))

HEAD = select(log_head.c.position).where(log_head.c.id == 1)
LOG_ID = select(log_identity.c.log_id)

RELAY_POSITION = select(relay_table.c.position).where(relay_table.c.id == 1)
#: the relay's row, locked, or no row while another replica's relay holds it
RELAY_LOCK = RELAY_POSITION.with_for_update(skip_locked=True)
#: the relay has published up to ``to``
RELAY_ADVANCE = update(relay_table).where(relay_table.c.id == 1).values(position=bindparam("to"))

#: (position, log id) of an upstream applied so far (``upstream``)
TRACKED = select(tracking_table.c.position, tracking_table.c.log_id).where(
    tracking_table.c.upstream == bindparam("upstream"))
TRACKED_LOCKED = TRACKED.with_for_update()
#: ``of`` (the upstream) applied up to ``to`` (log ``to_log``), if it stood at ``previous``
#: (an update's parameters may not be named as its table's columns)
TRACK = (update(tracking_table)
         .where(tracking_table.c.upstream == bindparam("of"),
                tracking_table.c.position == bindparam("previous"))
         .values(position=bindparam("to"), log_id=bindparam("to_log")))
