"""``kaowu demo``'s screen: a live Rich display of the season as it runs, and the funnel
at the end. The season itself is ``cli.season.SeasonDriver``; this only draws it."""

from __future__ import annotations

import threading
from datetime import datetime

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from cli.season import Reporter, SeasonResult, Task
from shared.clock import shanghai


class _RichTask(Task):
    def __init__(self, progress: Progress, description: str, total: int):
        self.progress, self.description, self.total = progress, description, total
        self.id = progress.add_task(description, total=total or None)
        self.done = 0
        self._lock = threading.Lock()

    def advance(self, n: int = 1):
        with self._lock:
            self.done += n
        self.progress.advance(self.id, n)

    def finish(self):
        self.progress.remove_task(self.id)
        if self.total:
            self.progress.console.print(f"  [green]✓[/] {self.description} ({self.done}/{self.total})")


class RichReporter(Reporter):
    """Phases as rules, steps as progress bars, the wait for the next window as a countdown."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 transient=True)
        self._wait_id = None
        self._wait_until = None
        self._wait_total = 0.0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def phase(self, name: str, description: str):
        self._end_wait()
        self.console.print(Rule(Text(description, style="bold"), align="left"))

    def waiting(self, description: str, until: datetime, now: datetime):
        left = max((until - now).total_seconds(), 0.0)
        if self._wait_until != until:
            self._end_wait()
            self._wait_until, self._wait_total = until, max(left, 0.1)
            self._wait_id = self.progress.add_task(
                f"{description} (at {shanghai(until)[11:]})", total=self._wait_total)
        self.progress.update(self._wait_id, completed=max(self._wait_total - left, 0))

    def _end_wait(self):
        if self._wait_id is not None:
            self.progress.remove_task(self._wait_id)
        self._wait_id = self._wait_until = None

    def task(self, description: str, total: int) -> Task:
        return _RichTask(self.progress, description, total)

    def note(self, text: str):
        self.console.print(Text(f"  {text}", style="dim"))


def render_result(console: Console, result: SeasonResult):
    mix = Table(title="Candidates by path (planned from the seed)", title_justify="left")
    mix.add_column("path")
    mix.add_column("candidates", justify="right")
    counts: dict[str, int] = {}
    for c in result.plan:
        counts[c.path.archetype] = counts.get(c.path.archetype, 0) + 1
    for name, n in sorted(counts.items()):
        mix.add_row(name, str(n))
    console.print(mix)
    if result.draw:
        console.print(f"spot check: drew {len(result.draw.get('selected') or [])} of "
                      f"{result.draw.get('population')} passed cases "
                      f"(rate {result.draw.get('rate')}, seed {result.draw.get('seed')})")
    table = Table(title=f"Funnel of {result.session_id} (read back from the services)",
                  title_justify="left")
    for col, just in (("", "left"), ("intended", "right"), ("services say", "right"), ("", "left")):
        table.add_column(col, justify=just)
    for name, want, got, agree in result.comparison:
        table.add_row(name, "–" if want is None else str(want), "–" if got is None else str(got),
                      Text("✓", style="green") if agree else Text("✗ differs", style="bold red"))
    console.print(table)
    for note in result.skipped:
        console.print(Text(note, style="yellow"))
    if result.deviations:
        dev = Table(title="What did not go as planned", title_justify="left")
        for col in ("who", "step", "what happened"):
            dev.add_column(col, overflow="fold")
        for d in result.deviations[:50]:
            dev.add_row(d.candidate, d.step, d.message)
        console.print(dev)
        if len(result.deviations) > 50:
            console.print(f"… and {len(result.deviations) - 50} more")
    if result.outside_actions or result.outside:
        beside = Table(title="Beside the plan: applications made on the site during the demo "
                             "(not in the funnel above)", title_justify="left")
        beside.add_column("")
        beside.add_column("count", justify="right")
        for name, n in result.outside_actions.items():
            beside.add_row(f"the demo did: {name}", str(n))
        for name, n in result.outside.items():
            beside.add_row(f"services say: {name}", str(n))
        console.print(beside)
    if result.calls:
        console.print(f"{result.calls} RPC calls; the slowest took {result.slowest[0]:.2f} s "
                      f"({result.slowest[1]})")
    wrong = [name for name, *_, agree in result.comparison if not agree]
    verdict = ("the services' funnel agrees with the plan" if not wrong
               else f"the services' funnel differs from the plan in: {', '.join(wrong)}")
    console.print(Text(f"{verdict} ({result.seconds:.0f} s)", style="bold green" if not wrong
                       else "bold red"))
