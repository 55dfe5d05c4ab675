"""``python -m bench.profiled OUT ARGS…``: nameko's command line (``nameko ARGS…``) in a
process that profiles itself only while told to: SIGUSR1 starts, SIGUSR2 stops and writes
OUT. With ``BENCH_PROFILE=DIR`` the bench starts every service so and signals them around
each measured window only (set-up left out).

Two profilers, by ``BENCH_PROFILE_MODE``:

- ``cprofile`` (the default): ``cProfile``, OUT in ``pstats`` format. Under eventlet it
  counts time spent waiting in the hub against whatever frame switched to it: cumulative
  times mislead;
- ``sample``: the stack of whatever runs, sampled every SAMPLE_CPU_S of this process's CPU
  time (``ITIMER_PROF``; the handler is handed the frame it interrupted, so the running
  green thread's own stack), OUT in the collapsed-stacks format of flame graphs (``a;b;c
  count`` a line). A sample is CPU spent, waits and a loaded machine count nothing."""

import cProfile
import os
import signal
import sys
from collections import Counter

SAMPLE_CPU_S = 0.001


def _frames(frame):
    stack = []
    while frame is not None:
        code = frame.f_code
        stack.append(f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}")
        frame = frame.f_back
    return ";".join(reversed(stack))


def main():
    out, args = sys.argv[1], sys.argv[2:]
    if os.environ.get("BENCH_PROFILE_MODE") == "sample":
        samples = Counter()

        def sample(_signum, frame):
            samples[_frames(frame)] += 1

        def start(_signum, _frame):
            signal.setitimer(signal.ITIMER_PROF, SAMPLE_CPU_S, SAMPLE_CPU_S)

        def stop(_signum, _frame):
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            with open(out, "w", encoding="utf-8") as f:
                f.writelines(f"{stack} {n}\n" for stack, n in samples.items())

        signal.signal(signal.SIGPROF, sample)
    else:
        profile = cProfile.Profile()

        def start(_signum, _frame):
            profile.enable()

        def stop(_signum, _frame):
            profile.disable()
            profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["nameko", *args]
    from nameko.cli.main import main as nameko_main

    return nameko_main()


if __name__ == "__main__":
    sys.exit(main())
