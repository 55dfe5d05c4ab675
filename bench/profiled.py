"""``python -m bench.profiled OUT ARGS…``: nameko's command line (``nameko ARGS…``) in a
process that profiles itself only while told to: SIGUSR1 starts ``cProfile``, SIGUSR2
stops it and writes OUT (``pstats`` format). With ``BENCH_PROFILE=DIR`` the bench starts
every service so and signals them around each measured window only (set-up left out)."""

import cProfile
import signal
import sys


def main():
    out, args = sys.argv[1], sys.argv[2:]
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
