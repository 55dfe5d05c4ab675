"""Client processes of ``bench.application`` (``python -m bench.decision_client SPEC``).

Three jobs, by ``SPEC["mode"]``:

- ``call``: one RPC call (``service``, ``method``, ``args``), its JSON result printed (the
  bench process itself runs no eventlet, so it has a call like ``load_session`` made here);
- ``setup``: green threads, each with a ``ClusterRpcProxy`` of its own, register candidates
  and complete their profiles (``bench.applicants.set_up``: until registration knows each
  is complete); prints ``{"candidates": [[n, account_id], …]}``;
- ``open``: one of the open-loop clients of ``submit_to_decision``. Submission ``k`` of
  the whole run (all processes) is due at ``T0 + k / rate`` (``time.monotonic``: the same
  clock in every process on the machine) and is candidate ``k % len(candidates)``
  applying to session ``k // len(candidates)``; this process sends those with
  ``k % procs == proc``, each at its time, whatever became of the ones before (open loop:
  a slow answer does not delay the next submission as long as one of the ``threads``
  proxies is free; when none is, the submission goes late and its latency still counts
  from when it was due; one more than ``give_up_s`` late is not sent at all: the
  services are stuck). It prints ``ready``, waits for ``go T0`` on stdin, and at the
  end prints one JSON line: every answered submission's application stream, due time,
  send time and answer time, and the errors.
"""

import eventlet

eventlet.monkey_patch()  # before anything imports socket or threading

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from bench import applicants  # noqa: E402


def _config(spec):
    return {"AMQP_URI": spec["amqp"], "serializer": "json"}


def call(spec) -> int:
    with ClusterRpcProxy(_config(spec), timeout=spec.get("call_timeout", 60)) as proxy:
        result = getattr(getattr(proxy, spec["service"]), spec["method"])(*spec.get("args", []))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def setup(spec) -> int:
    photo = applicants.photo_base64()
    done, failures = [], []

    def worker(thread):
        ns = applicants.numbers(spec["group"], spec["proc"], thread, spec["per_thread"])
        try:
            with ClusterRpcProxy(_config(spec), timeout=spec.get("call_timeout", 60)) as proxy:
                done.extend(zip(ns, applicants.set_up(proxy, ns, photo), strict=True))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:300])

    pool = [eventlet.spawn(worker, t) for t in range(spec["threads"])]
    for gt in pool:
        gt.wait()
    if failures:
        print(f"failed {failures[0]}", flush=True)
        return 1
    print(json.dumps({"candidates": done}), flush=True)
    return 0


def open_loop(spec) -> int:
    threads, proc, procs, rate = spec["threads"], spec["proc"], spec["procs"], spec["rate"]
    candidates, sessions = spec["candidates"], spec["sessions"]
    if len(candidates) * len(sessions) < spec["submissions"]:
        print(f"failed: {len(candidates)} candidates x {len(sessions)} sessions for "
              f"{spec['submissions']} submissions", flush=True)
        return 1
    due = [k for k in range(spec["submissions"]) if k % procs == proc]
    set_up = eventlet.semaphore.Semaphore(0)
    go = eventlet.event.Event()
    sends, failures = [], []
    state = {"next": 0, "errors": 0, "first_error": None, "abandoned": 0}

    def worker():
        with ClusterRpcProxy(_config(spec), timeout=spec.get("call_timeout", 60)) as proxy:
            set_up.release()
            t0 = go.wait()
            while state["next"] < len(due):
                k = due[state["next"]]  # green threads: nothing yields between read and write
                state["next"] += 1
                n, account_id = candidates[k % len(candidates)]
                session_id = sessions[k // len(candidates)]
                at = t0 + k / rate
                delay = at - time.monotonic()
                if delay > 0:
                    eventlet.sleep(delay)
                elif -delay > spec["give_up_s"]:  # stuck services: the run must end
                    state["abandoned"] += 1
                    continue
                sent = time.monotonic()
                try:
                    proxy.registration.submit_application(
                        account_id, applicants.application(n, session_id))
                except Exception as exc:  # counted and reported, the load goes on
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or f"{type(exc).__name__}: {exc}"[:300]
                    continue
                sends.append((applicants.application_stream(session_id, account_id), at, sent,
                              time.monotonic()))

    def guarded():
        try:
            worker()
        except Exception as exc:  # the proxy could not connect
            failures.append(f"{type(exc).__name__}: {exc}"[:300])
            set_up.release()

    pool = [eventlet.spawn(guarded) for _ in range(threads)]
    for _ in range(threads):
        set_up.acquire()
    if failures:
        print(f"failed {failures[0]}", flush=True)
        return 1
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "go":
        return 1
    go.send(float(line[1]))
    for gt in pool:
        gt.wait()
    print(json.dumps({"sends": sends, "errors": state["errors"], "abandoned": state["abandoned"],
                      "first_error": state["first_error"], "due": len(due)}), flush=True)
    return 0


def main():
    spec = json.loads(sys.argv[1]) if sys.argv[1] != "-" else json.loads(sys.stdin.readline())
    return {"call": call, "setup": setup, "open": open_loop}[spec["mode"]](spec)


if __name__ == "__main__":
    sys.exit(main())
