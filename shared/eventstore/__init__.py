"""The append-only event log of one service, on SQLAlchemy 2 Core (SQLite or PostgreSQL).

Ideas from the ``eventsourcing`` library, in one code path for both databases:

- optimistic concurrency on (stream_id, stream_version): a unique key, so two writers that
  decided on the same version cannot both commit; the loser gets ``ConcurrencyConflict``;
- gapless positions in commit order: an append takes the next positions from a one-row
  ``log_head`` counter with ``UPDATE … RETURNING``. The row lock is held to commit, so the
  next writer waits and numbers after it, and a rolled-back append gives its numbers back;
- the log is the outbox (the relay reads it), projections are updated in the same
  transaction as the append, and a consumer's tracking record too.

One module per job:

- ``tables``: the core tables (log, head, tracking, identity, relay, projection state, blobs);
- ``engine``: engines for SQLite and PostgreSQL, creating a database;
- ``store``: ``EventStore`` (a service's log: units of work, commands with retries) and
  ``open_store``;
- ``unit_of_work``: ``Transaction`` (read streams, decide, append, track, commit once),
  ``Context``, ``ConcurrencyConflict``;
- ``statements``: the statements every command, consumer, relay cycle and read runs,
  built once;
- ``reading``: streams and the log read back and decoded (``read_stream``,
  ``events_after``, ``replay`` for rebuilds);
- ``positions``: where the log, the relay, the consumers and the read models stand;
- ``threads``: the rebuild's database calls on ``eventlet.tpool`` threads, pausing the GC.
"""
