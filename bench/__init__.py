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
    "scoring": "bench.scoring",  # import_scores of 100k rows: seconds and peak memory
    "admission": "bench.admission",  # seat allocation for 50,000 candidates: seconds, peak memory
    "rebuild": "bench.rebuild",  # a read model rebuilt from a log of 1,000,000 events (PostgreSQL)
    "certificate": "bench.certificate",  # issuing 10,000 certificates (VC signing), PDFs/s
    "memory": "bench.memory",  # scoring's and certificate's peak RSS at the season's end, 10,000
    "season": "bench.season",  # 10,000 candidates sign-up to certificate, 7 service processes
}
