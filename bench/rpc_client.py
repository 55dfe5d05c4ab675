"""One RPC load client process (``python -m bench.rpc_client SPEC``), driven by bench.rpc.

Green threads, each with a ``ClusterRpcProxy`` of its own (a standalone proxy must not be
shared between green threads), do their setup, then the process prints ``ready`` and waits
for ``go`` on stdin; then every thread calls in a loop for ``duration`` seconds (at most
``max_calls`` calls), and the process prints one JSON line: calls, errors, elapsed seconds
and an encoded HdrHistogram of call latencies in microseconds.
"""

import eventlet

eventlet.monkey_patch()  # before anything imports socket or threading

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from hdrh.histogram import HdrHistogram  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from bench.common import birth_date_and_gender, candidate  # noqa: E402

MAX_CALLS = 1_000_000  # per thread: the loop is bounded by count as well as by time
PROFILE_SETUP_PASSWORD = "Secret123pass"


class Exhausted(Exception):
    """The thread has no work left (every candidate it set up has applied)."""



def _ids(spec, thread):
    """Distinct candidate numbers for this (process, thread): 100,000 each."""
    return (spec["proc"] * 64 + thread) * 100_000


def make_work(spec, thread, proxy):
    """Set up (pre-register accounts for the profile figure); return the call to repeat
    (which raises ``Exhausted`` when the thread has nothing left to do)."""
    mode = spec["mode"]
    base = _ids(spec, thread)
    if mode == "echo":
        payload = {"n": 0, "text": "x" * 64}
        return lambda: proxy.echo.echo(payload)
    if mode == "register":
        counter = iter(range(base, base + 100_000))
        return lambda: proxy.account.register(candidate(next(counter)))
    if mode == "profile":
        accounts = []
        for i in range(spec["accounts_per_thread"]):
            cand = candidate(base + i, PROFILE_SETUP_PASSWORD)
            account_id = proxy.account.register(cand)["account_id"]
            born, gender = birth_date_and_gender(cand["id_number"])
            accounts.append((account_id, born, gender))
        state = {"n": 0}

        def update():
            n = state["n"]
            state["n"] += 1
            account_id, born, gender = accounts[n % len(accounts)]
            k = n // len(accounts)  # the same account never gets the same content twice
            if k % 2:
                return proxy.account.update_profile_section(account_id, "basic", {
                    "gender": gender, "birth_date": born, "ethnicity": "汉族",
                    "political_status": f"群众{k}"})
            return proxy.account.update_profile_section(account_id, "contact", {
                "email": f"c{base + n % len(accounts)}@example.com",
                "address": f"上海市徐汇区桂箐路{k}号"})

        return update
    if mode == "submit":  # candidates set up before (bench.application), this thread's share
        from bench import applicants

        todo = iter(spec["candidates"][thread::spec["threads"]])
        session_id = spec["session_id"]

        def submit():
            try:
                n, account_id = next(todo)
            except StopIteration:
                raise Exhausted from None
            return proxy.registration.submit_application(
                account_id, applicants.application(n, session_id))

        return submit
    raise ValueError(f"unknown mode {mode!r}")


def main():
    spec = json.loads(sys.argv[1])
    config = {"AMQP_URI": spec["amqp"], "serializer": "json"}
    threads = spec["threads"]
    set_up = eventlet.semaphore.Semaphore(0)
    go = eventlet.event.Event()
    results, failures = [], []

    def worker(thread):
        hist = HdrHistogram(1, 120_000_000, 3)
        calls = errors = 0
        first_error, exhausted = None, False
        with ClusterRpcProxy(config, timeout=spec.get("call_timeout", 60)) as proxy:
            try:
                work = make_work(spec, thread, proxy)
            except Exception as exc:
                failures.append(f"setup: {type(exc).__name__}: {exc}"[:300])
                return
            finally:
                set_up.release()
            deadline = go.wait()
            while calls + errors < MAX_CALLS:
                t = time.perf_counter()
                if t >= deadline:
                    break
                try:
                    work()
                except Exhausted:
                    exhausted = True
                    break
                except Exception as exc:  # counted and reported, the load goes on
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                    continue
                hist.record_value(max(1, int((time.perf_counter() - t) * 1e6)))
                calls += 1
        results.append((calls, errors, first_error, exhausted, hist))

    pool = [eventlet.spawn(worker, i) for i in range(threads)]
    for _ in range(threads):
        set_up.acquire()
    if failures:
        print(f"failed {failures[0]}", flush=True)
        return 1
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    t0 = time.perf_counter()
    go.send(t0 + spec["duration"])
    for gt in pool:
        gt.wait()
    elapsed = time.perf_counter() - t0
    total = HdrHistogram(1, 120_000_000, 3)
    for *_, hist in results:
        total.add(hist)
    print(json.dumps({
        "calls": sum(r[0] for r in results), "errors": sum(r[1] for r in results),
        "first_error": next((r[2] for r in results if r[2]), None), "elapsed": elapsed,
        "exhausted": sum(1 for r in results if r[3]),
        "histogram": total.encode().decode(),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
