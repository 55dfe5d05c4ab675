"""Projections: read models that are pure folds of a service's own log.

A projection's ``handle(event)`` is pure: it maps one stored event to row changes
(``Upsert`` / ``Update`` / ``Delete``) and touches nothing. By job:

- ``read_model``: ``Projection``, what a service declares, and ``snapshot``;
- ``changes``: the row changes, and writing them in the transaction that appended the
  events (so a read model is never behind its own log); ``statements``: the driver SQL
  that writes them, built once per table, kind and columns;
- ``rebuild``: the whole log replayed into emptied (PostgreSQL: twin, then swapped) tables;
  ``rebuild_rows`` folds a rebuild's rows in memory, ``bulk_writer`` writes them.
"""

from shared.projection.changes import Change, Delete, Update, Upsert
from shared.projection.read_model import Projection, snapshot

__all__ = ["Change", "Delete", "Projection", "Update", "Upsert", "snapshot"]
