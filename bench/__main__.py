"""``python -m bench [MODULE ...] [--only FIGURES] [--scale S] [--out PATH]``: run the
benchmarks, print the table, write ``bench/results/latest.json``.

Targets are reported, never asserted: the run fails only when a benchmark could not be
taken (a service missing, an error), not when a figure falls short.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import MODULES
from bench.common import Figure, cores_available, load_average, machine, new_context

RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3f}"


def table(figures: list[Figure]) -> str:
    head = ("figure", "value", "unit", "baseline", "ratio", "target", "")
    rows = []
    for f in figures:
        ratio = f.ratio
        if f.ceiling is not None:
            target = f"<= {_fmt(f.ceiling)} {f.unit}"
        elif f.floor is not None:
            target = f">= {_fmt(f.floor)} {f.unit}"
        elif f.target is not None:
            target = f">= {f.target:g}"
        else:
            target = "report"
        verdict = {None: "", True: "ok", False: "SHORT"}[f.met]
        if f.detail.get("errors"):
            verdict = f"{verdict} {f.detail['errors']} calls failed".strip()
        if f.detail.get("lost"):
            verdict = f"{verdict} {f.detail['lost']} lost".strip()
        if f.detail.get("stuck"):
            verdict = f"{verdict} services stuck".strip()
        if f.detail.get("sustained") is False:
            verdict = f"{verdict} (not sustained: {f.detail.get('decided_per_s')}/s)".strip()
        rows.append((f.name, _fmt(f.value), f.unit, _fmt(f.baseline),
                     "-" if ratio is None else f"{ratio:.2f}", target, verdict))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    right = {1, 3, 4}

    def line(r):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"only these ({', '.join(MODULES)}); default all")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="shrink sizes and durations (e.g. 0.2 for a quick trial run)")
    parser.add_argument("--only", default="",
                        help="comma-separated figure names (or prefixes) to take, e.g. "
                             "store_append,profile_update_rpc")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"no module {', '.join(unknown)}; choose from {', '.join(MODULES)}")

    ctx = new_context(scale=args.scale, only=tuple(filter(None, args.only.split(","))))
    names = args.modules or list(MODULES)
    figures: list[Figure] = []
    failed = []
    started = time.monotonic()
    print(f"kaowu bench {ctx.run_id}: {', '.join(names)} (work dir {ctx.workdir})", file=sys.stderr)
    load_before = load_average()
    if load_before is not None and load_before > 0.5 * cores_available():
        print(f"warning: load average {load_before:.1f} before the run: something else is busy "
              "on this machine, the figures will be low and noisy", file=sys.stderr)
    for name in names:
        try:
            module = importlib.import_module(MODULES[name])
            for fig in module.run(ctx):
                figures.append(fig)
                ctx.taken[fig.name] = fig  # a later module may use it as its baseline
                ratio = "" if fig.ratio is None else f", ratio {fig.ratio:.2f}"
                ctx.log(f"{fig.name} = {_fmt(fig.value)} {fig.unit} "
                        f"(baseline {_fmt(fig.baseline)}{ratio})")
        except Exception:
            failed.append(name)
            print(f"bench: module {name} failed:\n{traceback.format_exc()}", file=sys.stderr)

    out = {f.name: f.as_json() for f in figures}
    out["machine"] = machine()
    out["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    out["machine"]["bench_seconds"] = round(time.monotonic() - started, 1)
    out["machine"]["load_average_before"] = load_before
    out["machine"]["load_average_after"] = load_average()
    if args.scale != 1.0:
        out["machine"]["scale"] = args.scale
    if ctx.only:
        out["machine"]["only"] = list(ctx.only)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")

    print()
    print(table(figures))
    m = out["machine"]
    print(f"\n{m['cores_available']} cores, Python {m['python']}, SQLite {m['sqlite']}, "
          f"PostgreSQL {m['postgres']}; {m['bench_seconds']} s; written to {args.out}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (see above); work dir kept: {ctx.workdir}",
              file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
