"""Kaowu benchmarks: ``make bench`` (``python -m bench``).

Each module listed in ``MODULES`` has ``run(ctx)``, a generator that yields ``Figure``s as it
measures them. A figure's baseline is measured in the same run, on the same machine, so its
ratio (value / baseline) compares like with like. Add a figure set by writing a module with
``run(ctx)`` and naming it here; ``python -m bench NAME`` runs only the modules named.
"""

MODULES = {
    "store": "bench.store",  # event store: append, batch append, read, replay (SQLite, PostgreSQL)
    "rpc": "bench.rpc",  # nameko RPC over RabbitMQ: echo, account profile update, register
    "application": "bench.application",  # submit_application calls/s; submit-to-decision latency
}
