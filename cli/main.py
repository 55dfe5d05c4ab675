"""``kaowu``: the operator command line of Kaowu (考务运维命令行).

Talks to the running services over RPC (nameko, AMQP_URI from the environment, default
``amqp://guest:guest@127.0.0.1:5672/``). Every call has a timeout: a service that is down
is reported as down, never waited on forever. Personal data (ID and mobile numbers) is
masked in everything it prints.

Exit status of every command: 0 done; 1 refused, failed or (status) something down;
2 the broker cannot be reached or the operation is not available here.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli import events as event_log
from cli import history as story
from cli.rpc import DEFAULT_TIMEOUT, STATUS_TIMEOUT, CliError, RpcClient
from shared.config import amqp_uri as default_amqp_uri
from shared.config import mask_url
from shared.errors import KaowuError
from shared.masking import mask, mask_id_number, mask_text

HELP = """kaowu: the operator command line of Kaowu (考务运维命令行).

Talks to the running services over RPC (nameko; AMQP_URI from the environment, default
amqp://guest:guest@127.0.0.1:5672/). Every call has a timeout: a service that is down is
reported as down. ID and mobile numbers are masked in everything it prints.

Exit status: 0 done; 1 refused, failed, or (status) something down; 2 the broker cannot
be reached, or bad usage.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None, pretty_exceptions_enable=False)
session_app = typer.Typer(help="Exam session documents (考试计划).", no_args_is_help=True)
scores_app = typer.Typer(help="Scores (成绩): import and publish.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts (工作人员).", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: messages the services could not handle.",
                      no_args_is_help=True)
rules_app = typer.Typer(help="Eligibility rules per exam year (报考条件): list, show, load.",
                        no_args_is_help=True)
app.add_typer(session_app, name="session")
app.add_typer(scores_app, name="scores")
app.add_typer(staff_app, name="staff")
app.add_typer(dlq_app, name="dlq")
app.add_typer(rules_app, name="rules")


# --------------------------------------------------------------------------- state


@dataclass
class State:
    """What every command needs: the broker and a way to make RPC clients. Tests hand in
    their own ``client_factory`` (``factory(timeout=...) -> client`` with ``call`` and
    ``close``) through ``CliRunner.invoke(app, ..., obj=State(...))``."""

    amqp_uri: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    client_factory: object = None
    gateway_probe: object = None  # ``probe(timeout) -> answer | Exception``; default: HTTP
    _console: Console | None = field(default=None, repr=False)

    def factory(self):
        if self.client_factory is not None:
            return self.client_factory
        uri = self.amqp_uri or default_amqp_uri()

        def make(timeout: float | None = self.timeout):
            return RpcClient(uri, timeout=timeout)

        return make

    def client(self, timeout: float | None = None):
        return self.factory()(timeout=self.timeout if timeout is None else timeout)

    @property
    def broker(self) -> str:
        return self.amqp_uri or default_amqp_uri()

    @property
    def console(self) -> Console:
        if self._console is None:
            wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
            self._console = Console(width=wide, highlight=False, soft_wrap=False)
        return self._console


@app.callback()
def _main(ctx: typer.Context,
          amqp_uri: str = typer.Option(None, "--amqp-uri", envvar="AMQP_URI", show_envvar=True,
                                       help="RabbitMQ broker (default amqp://guest:guest@127.0.0.1:5672/)."),
          timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", min=0.1,
                                        help="Seconds to wait for a service's answer.")):
    if ctx.obj is None:
        ctx.obj = State()
    if amqp_uri and not ctx.obj.amqp_uri:
        ctx.obj.amqp_uri = amqp_uri
    if timeout != DEFAULT_TIMEOUT:
        ctx.obj.timeout = timeout


def _state(ctx: typer.Context) -> State:
    return ctx.find_object(State) or State()


def _fail(message: str, code: int = 1):
    typer.echo(f"kaowu: {message}", err=True)
    raise typer.Exit(code)


def _refusal(exc: KaowuError, secrets: tuple[str, ...] = ()):
    """A service's refusal: its message and each field's message. Field messages are the
    rules broken ("a password needs at least one letter and one digit"), so they are shown
    under every key, a password's too; only personal numbers in them are masked, and a
    secret the command sent (``secrets``) never appears."""
    def clean(value) -> str:
        text = mask_text("; ".join(map(str, value)) if isinstance(value, list) else str(value))
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    typer.echo(f"kaowu: refused ({exc.error_code}): {clean(exc.message)}", err=True)
    for key, value in (exc.fields or {}).items():
        typer.echo(f"  {key}: {clean(value)}", err=True)
    raise typer.Exit(1)


def handled(fn):
    """Errors a person can act on become one line and an exit status, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            _fail(str(exc), exc.exit_code)
        except KaowuError as exc:
            _refusal(exc)

    return wrapper


def read_text_file(file: Path, what: str, encoding: str = "utf-8-sig") -> str:
    """A file the operator named, as text; one that cannot be read, or is not UTF-8 (a sheet
    saved as GBK, say), is a CliError that says so, never a traceback."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CliError(
            f"{file} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            f"save the {what} as UTF-8, e.g. iconv -f GBK -t UTF-8 {file} > utf8-{file.name}"
        ) from None


def _authority(as_: str | None) -> dict:
    return {"staff_id": as_ or os.environ.get("KAOWU_STAFF_ID") or _default_staff_id()}


def _default_staff_id() -> str:
    from cli.rpc import actor

    return actor().replace("kaowu-cli:", "cli-")[:64]


def _services(names: list[str] | None) -> list[str]:
    """The event-sourced services named (all if none), each checked to exist."""
    from cli.status import check_names, known_services, order

    return order(check_names(names, known_services())) if names else known_services()


def _check_event_types(service: str, types: list[str]) -> None:
    """--type names an event type the service's log can hold (a typo would list nothing)."""
    import importlib

    from cli.status import check_names

    try:
        registry = importlib.import_module(f"services.{service}.schemas").REGISTRY
    except (ImportError, AttributeError):  # not an installation with the services' code
        return
    check_names(types, sorted(registry.names()), what="event type")


def _service(name: str) -> str:
    from cli.status import check_names, known_services

    return check_names([name], known_services())[0]


# --------------------------------------------------------------------------- status


@app.command()
@handled
def status(ctx: typer.Context,
           services: list[str] = typer.Argument(None, help="Only these services (default: all)."),
           wait: float = typer.Option(STATUS_TIMEOUT, "--wait", min=0.1,
                                      help="Seconds a service has to answer before it counts as down."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """Each service up or down, its log head, relay lag, consumer lag per upstream and dead
    letters; the gateway by its /health/ready (KAOWU_GATEWAY_URL, default
    http://127.0.0.1:$GATEWAY_PORT, port 8000).

    Exit status: 0 every service answered; 1 one or more are down; 2 the broker cannot be
    reached.
    """
    from cli import status as st

    state = _state(ctx)
    everything = st.all_services()
    names = st.order(st.check_names(services, everything)) if services else everything
    answers = st.gather(names, state.factory(), timeout=wait, gateway=state.gateway_probe)
    rows = st.lags(answers)
    dead, dead_note = _dead_letter_counts(state)
    code, verdict = st.summarize(rows)
    if as_json:
        typer.echo(json.dumps({"services": [_row_json(r) for r in rows], "dead_letters": dead,
                               "dead_letters_note": dead_note, "verdict": verdict},
                              ensure_ascii=False, indent=2))
        raise typer.Exit(code)
    table = Table(title=f"Kaowu services at {mask_url(state.broker)}", title_justify="left")
    for col, just in (("service", "left"), ("state", "left"), ("log head", "right"),
                      ("relay lag", "right"), ("projections", "left"),
                      ("consumer lag (upstream: head − applied)", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for r in rows:
        if not r.up:
            table.add_row(r.service, Text("DOWN", style="bold red"), "–", "–", "–",
                          Text(r.error or "", style="red"))
            continue
        if not r.keeps_log:
            table.add_row(r.service, Text("up", style="green"), "–", "–", "–",
                          "(no log: /health/ready answered 200)")
            continue
        projections = ", ".join(f"{n} {p}" + ("" if p >= (r.head or 0) else f" (−{r.head - p})")
                                for n, p in r.projections.items()) or "–"
        consumers = ", ".join(f"{c.upstream}: {'?' if c.lag is None else c.lag}" +
                              ("" if c.upstream_head is not None else " (upstream down)")
                              for c in r.consumers) or "–"
        table.add_row(r.service, Text("up", style="green"), str(r.head), str(r.relay_lag),
                      projections, consumers)
    state.console.print(table)
    for queue, n in sorted((dead or {}).items()):
        state.console.print(Text(f"dead letters in {queue}: {n}", style="bold yellow" if n else ""))
    if dead_note:
        state.console.print(dead_note)
    state.console.print(Text(verdict, style="bold red" if code else "bold green"))
    raise typer.Exit(code)


def _row_json(r) -> dict:
    return {"service": r.service, "up": r.up, "error": r.error, "head": r.head,
            "relay_position": r.relay_position, "relay_lag": r.relay_lag,
            "projections": r.projections,
            "consumers": [{"upstream": c.upstream, "applied": c.tracked,
                           "upstream_head": c.upstream_head, "lag": c.lag} for c in r.consumers]}


def _deadletter_module():
    try:
        import shared.deadletter as module
    except ImportError:
        return None
    return module


def _dead_letter_counts(state: State):
    module = _deadletter_module()
    if module is None:
        return None, "dead letters: not available (this installation has no shared/deadletter.py)"
    try:
        return dict(module.counts(state.broker)), None
    except Exception as exc:  # the broker's management side may refuse: say so, go on
        return None, f"dead letters: could not be counted ({type(exc).__name__}: {mask_url(str(exc))})"


# --------------------------------------------------------------------------- events


@app.command()
@handled
def events(ctx: typer.Context,
           service: str = typer.Argument(..., metavar="SERVICE",
                                         help="Whose log: account, registration, …"),
           after: int = typer.Option(0, "--after", min=0, help="Start after this log position."),
           types: list[str] = typer.Option(None, "--type", "-t",
                                           help="Only events of this type (repeatable)."),
           stream: str = typer.Option(None, "--stream", "-s",
                                      help="Only this stream id (glob patterns like 'case-*' work)."),
           limit: int = typer.Option(100, "--limit", "-n", min=1,
                                     help="At most this many events (before following)."),
           follow: bool = typer.Option(False, "--follow", "-f",
                                       help="Keep polling for new events until Ctrl-C."),
           interval: float = typer.Option(1.0, "--interval", min=0.05,
                                          help="Seconds between polls with --follow."),
           as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")):
    """Read a service's event log (events_after, page by page), filtered. ID and mobile
    numbers are masked."""
    service = _service(service)
    if types:
        _check_event_types(service, types)
    state = _state(ctx)
    with state.client() as client:
        reader = event_log.LogReader(client.call, service, after, types, stream)
        shown = 0

        def emit(ev):
            typer.echo(event_log.as_json(ev) if as_json else event_log.line(ev))

        for ev in reader.read(limit):
            emit(ev)
            shown += 1
        if not follow:
            if shown >= limit and not as_json:
                typer.echo(f"(first {limit} shown; continue with --after {reader.position})",
                           err=True)
            return
        typer.echo(f"(following {service} after position {reader.position}; Ctrl-C stops)",
                   err=True)
        try:
            while True:
                time.sleep(interval)
                for ev in reader.read():
                    emit(ev)
        except KeyboardInterrupt:
            typer.echo(f"(stopped at position {reader.position})", err=True)


# --------------------------------------------------------------------------- rebuild


@app.command()
@handled
def rebuild(ctx: typer.Context,
            service: str = typer.Argument(..., metavar="SERVICE",
                                          help="The service whose read models to rebuild."),
            projection: str = typer.Option(None, "--projection", "-p",
                                           help="Only this projection (default: all)."),
            wait: float = typer.Option(3600.0, "--wait", min=1,
                                       help="Seconds the rebuild may take before we stop waiting.")):
    """Rebuild read models from the log while the service runs, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cli import rebuild as rb

    service = _service(service)
    state = _state(ctx)
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                  console=state.console, transient=False) as progress:

        def on_progress(items):
            for p in items:
                if p.projection not in tasks:
                    tasks[p.projection] = progress.add_task(f"{service}/{p.projection}",
                                                            total=None, note="")
                tid = tasks[p.projection]
                if p.done:
                    total = max(p.head, p.position or 0)
                    progress.update(tid, total=total, completed=total, note="done")
                elif p.position is None:
                    progress.update(tid, total=None, note=f"replaying {p.head} events…")
                else:
                    progress.update(tid, total=p.head, completed=min(p.position, p.head), note="")

        result = rb.rebuild(service, projection, state.factory(), on_progress, timeout=wait)
    table = Table(title=f"{service}: rebuilt in {result.seconds:.1f} s", title_justify="left")
    for col in ("projection", "events replayed", "position now"):
        table.add_column(col, justify="left" if col == "projection" else "right")
    for name, n in result.replayed.items():
        table.add_row(name, str(n), str(result.positions_after.get(name, "?")))
    state.console.print(table)
    state.console.print(f"log head {result.head_before} before, {result.head_after} now")


# --------------------------------------------------------------------------- history


@app.command()
@handled
def history(ctx: typer.Context,
            who: str = typer.Argument(..., metavar="ID-NUMBER-OR-APPLICATION",
                                      help="A candidate's ID number, application id or account id."),
            services: list[str] = typer.Option(None, "--service", "-s",
                                               help="Read only these logs (default: every service's).")):
    """The whole story of one candidate across every service, in time order.

    Reads every service's whole log over RPC (cost grows with the logs: an operator tool for
    one candidate at a time). The ID number is masked except its last 4 characters. Exit
    status 1 if no such candidate, or if a service's log could not be read.
    """
    state = _state(ctx)
    services = _services(services)
    target = story.classify(who)
    started = time.monotonic()
    with state.client() as client:
        scanned: dict[str, int] = {}
        story.resolve(target, client.call, scanned)
        if not target.account_ids:
            _fail(f"no account with ID number {mask_id_number(target.id_number or who)} "
                  f"(account log scanned: {scanned.get('account', 0)} events)")
        result = story.collect(target, services, client.call, scanned)
    t = result.target
    who_line = t.name or "?"
    if t.id_number:
        who_line += f", ID number {mask_id_number(t.id_number)}"
    typer.echo(f"Candidate {who_line}; account {', '.join(sorted(t.account_ids))}")
    if t.application_ids:
        typer.echo(f"Applications: {', '.join(sorted(t.application_ids))}")
    for service, ev in result.events:
        typer.echo(event_log.line(ev, service))
    for service, why in result.unreadable.items():
        typer.echo(f"kaowu: {service}'s log could not be read, so this history lacks it: {why}",
                   err=True)
    total = sum(result.scanned.values())
    typer.echo(f"{len(result.events)} events; scanned {total} events in "
               f"{len(result.scanned)} service logs in {time.monotonic() - started:.1f} s "
               f"(history reads every log in full)")
    if result.unreadable:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- sessions


@session_app.command("load")
@handled
def session_load(ctx: typer.Context,
                 file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                             help="The session document (YAML)."),
                 dry_run: bool = typer.Option(False, "--dry-run",
                                              help="Only check the document here; load nothing.")):
    """Load an exam session document into registration (checked whole: every problem is
    listed with its path). Its exam year must have eligibility rules (报考条件) for each of
    its levels: see `kaowu rules list`, and `kaowu rules load` them first."""
    from shared.errors import ValidationFailed
    from shared.session import parse_session

    state = _state(ctx)
    text = read_text_file(file, "session document")
    if not text.strip():
        _fail(f"{file} is empty: a session document is YAML (see "
              "deploy/sessions/2026-shanghai-jiliang.yml)")
    try:
        if dry_run:
            doc = parse_session(text)
            state.console.print(f"{file}: a valid session document ({doc.session_id}); "
                                "nothing loaded (--dry-run)")
            return
        with state.client() as client:
            got = client.call("registration", "load_session", {"yaml": text})
    except ValidationFailed as exc:
        _problems(state, file, exc)
    from cli.sessions import local_time

    table = Table(title=f"Loaded {got['session_id']}: {got.get('name', '')} (Asia/Shanghai)",
                  title_justify="left")
    for col in ("window", "", "from", "to"):
        table.add_column(col)
    for name, w in (got.get("windows") or {}).items():
        table.add_row(name, w.get("label", ""), local_time(w.get("start")), local_time(w.get("end")))
    state.console.print(table)
    if got.get("phase"):
        state.console.print(f"open now: {got['phase']}")


@session_app.command("list")
@handled
def session_list(ctx: typer.Context):
    """The loaded exam sessions: id, name, exam year and the window open now."""
    from shared.session import WINDOW_LABELS

    state = _state(ctx)
    with state.client() as client:
        sessions = client.call("registration", "list_sessions") or []
        details = {s["session_id"]: client.call("registration", "get_session", s["session_id"])
                   for s in sessions}
    if not sessions:
        state.console.print("no exam session is loaded (kaowu session load FILE)")
        return
    table = Table(title=f"{len(sessions)} exam session(s)", title_justify="left")
    for col in ("session", "name", "exam year", "open now", "registration points"):
        table.add_column(col, overflow="fold")
    for s in sessions:
        got = details[s["session_id"]]
        phase = got.get("phase")
        table.add_row(s["session_id"], s.get("name", ""), str(s.get("exam_year", "")),
                      f"{phase} {WINDOW_LABELS.get(phase, '')}" if phase else "–",
                      ", ".join(sorted(got.get("registration_points") or {})))
    state.console.print(table)


@session_app.command("show")
@handled
def session_show(ctx: typer.Context,
                 session: str = typer.Argument(..., metavar="SESSION",
                                               help="The exam session id (kaowu session list).")):
    """One session: its timetable (Asia/Shanghai), levels and subjects, registration points."""
    state = _state(ctx)
    with state.client() as client:
        got = _get_session(client, session)
    _print_session(state, got)


@session_app.command("amend")
@handled
def session_amend(ctx: typer.Context,
                  session: str = typer.Argument(..., metavar="SESSION", help="The exam session id."),
                  window: str = typer.Option(..., "--window", "-w",
                                             help="The window to move: application, verification, "
                                                  "spot_check, confirmation, ticket_printing, "
                                                  "exam, scores, certificates."),
                  start: str = typer.Option(..., "--start",
                                            help="New start, YYYY-MM-DD HH:MM (Asia/Shanghai)."),
                  end: str = typer.Option(..., "--end",
                                          help="New end, YYYY-MM-DD HH:MM (Asia/Shanghai)."),
                  reason: str = typer.Option(..., "--reason",
                                             help="Why (kept in the audit trail, told to candidates "
                                                  "through the amended reminders)."),
                  yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")):
    """Move one window of a session's timetable (调整时间安排). The whole timetable is
    checked again; candidates' reminders follow the amendment. Only a window that has not
    closed moves, and never to open or close in the past (an open window keeps its start)."""
    from cli.sessions import local_time, parse_time
    from cli.status import check_names
    from shared.session import WINDOW_LABELS, WINDOW_NAMES

    check_names([window], list(WINDOW_NAMES), what="window")
    try:
        new_start, new_end = parse_time(start, "--start"), parse_time(end, "--end")
    except ValueError as exc:
        _fail(str(exc))
    if new_end <= new_start:
        _fail(f"--end {end!r} is not after --start {start!r}")
    if not reason.strip():
        _fail("--reason must say why the timetable changes")
    state = _state(ctx)
    with state.client() as client:
        before = _get_session(client, session)
        old = (before.get("windows") or {}).get(window) or {}
        change = (f"{session}: {window} {WINDOW_LABELS[window]} from "
                  f"{local_time(old.get('start'))} – {local_time(old.get('end'))} to "
                  f"{local_time(new_start.isoformat())} – {local_time(new_end.isoformat())}")
        if not yes:
            typer.confirm(f"Move {change}?", abort=True)
        got = client.call("registration", "amend_timetable", {
            "session_id": session, "window": window, "start": new_start.isoformat(),
            "end": new_end.isoformat(), "reason": reason.strip()})
    state.console.print(f"Amended {change}")
    _print_session(state, got)


def _get_session(client, session: str) -> dict:
    """get_session; an unknown id is refused with the ids there are."""
    from shared.errors import NotFound

    try:
        return client.call("registration", "get_session", session)
    except NotFound:
        known = [s["session_id"] for s in client.call("registration", "list_sessions") or []]
        raise CliError(f"no exam session {session!r}; the loaded sessions are: "
                       f"{', '.join(known) or 'none (kaowu session load FILE)'}") from None


def _print_session(state: State, got: dict) -> None:
    from cli.sessions import local_time
    from shared.session import WINDOW_LABELS

    phase = got.get("phase")
    open_now = f"{phase} {WINDOW_LABELS.get(phase, '')}" if phase else "none"
    state.console.print(f"{got['session_id']}: {got.get('name', '')} (exam year "
                        f"{got.get('exam_year')}); open now: {open_now}")
    table = Table(title="Timetable (Asia/Shanghai)", title_justify="left")
    for col in ("window", "", "from", "to"):
        table.add_column(col)
    for name, w in (got.get("windows") or {}).items():
        table.add_row(name, w.get("label", ""), local_time(w.get("start")), local_time(w.get("end")))
    state.console.print(table)
    levels = Table(title="Levels", title_justify="left")
    for col in ("level", "name", "subjects"):
        levels.add_column(col, overflow="fold")
    for code, lv in (got.get("levels") or {}).items():
        levels.add_row(code, lv.get("name", ""), ", ".join(lv.get("subjects") or []))
    state.console.print(levels)
    points = Table(title="Registration points", title_justify="left")
    for col in ("code", "name", "address", "phone"):
        points.add_column(col, overflow="fold")
    for code, p in (got.get("registration_points") or {}).items():
        points.add_row(code, p.get("name", ""), p.get("address", ""), p.get("phone", ""))
    state.console.print(points)


def _problems(state: State, file: Path, exc):
    from cli.sessions import problems

    rows = problems(exc.fields)
    # the message on a line of its own: a table title wraps at the table's width
    typer.echo(f"kaowu: {file}: {exc.message}", err=True)
    table = Table(show_lines=False)
    table.add_column("where", style="bold", overflow="fold")
    table.add_column("problem", overflow="fold")
    for path, problem in rows:
        table.add_row(path, problem)
    Console(stderr=True, width=state.console.width, highlight=False).print(table)
    raise typer.Exit(1)


# --------------------------------------------------------------------------- 报考条件


@rules_app.command("list")
@handled
def rules_list(ctx: typer.Context):
    """Every exam year with eligibility rules, and the version in force (0: the default
    shipped with Kaowu)."""
    from cli.rules import years_table

    state = _state(ctx)
    with state.client() as client:
        got = client.call("verification", "list_rules")
    state.console.print(years_table(got))


@rules_app.command("show")
@handled
def rules_show(ctx: typer.Context,
               year: int = typer.Argument(..., help="The exam year."),
               version: int = typer.Option(None, "--version", min=0,
                                           help="This version (default: the one in force)."),
               as_yaml: bool = typer.Option(False, "--yaml",
                                            help="Print the document as loaded (YAML), to edit "
                                                 "and load again.")):
    """Show an exam year's eligibility rules: the years of metrology work each education
    level needs per exam level, and every version with who loaded it, when and why."""
    from cli.rules import rules_table, versions_table

    state = _state(ctx)
    with state.client() as client:
        got = client.call("verification", "get_rules", year, version)
    if as_yaml:
        typer.echo(got["yaml"], nl=not got["yaml"].endswith("\n"))
        return
    state.console.print(rules_table(got))
    state.console.print(versions_table(got))


@rules_app.command("load")
@handled
def rules_load(ctx: typer.Context,
               year: int = typer.Argument(..., help="The exam year."),
               file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                           help="The rules document (YAML, as "
                                                "services/verification/rules/2026.yml)."),
               reason: str = typer.Option(None, "--reason", help="Why this version (recorded)."),
               as_: str = typer.Option(None, "--as", help="Authority staff id."),
               dry_run: bool = typer.Option(False, "--dry-run",
                                            help="Only check the document here; load nothing.")):
    """Load an exam year's eligibility rules as its next version (checked whole: every
    problem is listed with its path). Loading the rules in force again adds no version.
    Applications are checked against the version in force when their case opens; a session
    of a year without rules is refused."""
    from services.verification.rules import check_rules_document
    from shared.errors import ValidationFailed

    state = _state(ctx)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        _fail(f"{file}: not a UTF-8 text file")
    try:
        if dry_run:
            check_rules_document(text, year)
            state.console.print(f"{file}: valid eligibility rules for {year}; nothing loaded "
                                "(--dry-run)")
            return
        with state.client() as client:
            got = client.call("verification", "load_rules", _authority(as_),
                              {"exam_year": year, "yaml": text, "reason": reason})
    except ValidationFailed as exc:
        _problems(state, file, exc)
    if got.get("changed"):
        state.console.print(f"Loaded 报考条件 {year} as version {got['version']}: in force now")
    else:
        state.console.print(f"Unchanged: {file} says what version {got['version']} of {year} "
                            "says; no new version")
    from cli.rules import rules_table

    state.console.print(rules_table(got))


# --------------------------------------------------------------------------- spot check


@app.command("spot-check")
@handled
def spot_check(ctx: typer.Context,
               session: str = typer.Option(..., "--session", help="The exam session id."),
               rate: float = typer.Option(..., "--rate", help="Share of passed cases to draw (0–1]."),
               seed: int = typer.Option(..., "--seed", help="The seed that makes the draw reproducible."),
               as_: str = typer.Option(None, "--as", help="Authority staff id (default: $KAOWU_STAFF_ID or your user).")):
    """Draw the spot check (抽查复核) of a session: reproducible from rate and seed; cases
    not drawn pass through."""
    state = _state(ctx)
    with state.client() as client:
        got = client.call("verification", "draw_spot_check", _authority(as_),
                          {"session_id": session, "rate": rate, "seed": seed})
    selected = got.get("selected") or []
    state.console.print(f"Spot check of {session}: drew {len(selected)} of {got.get('population')} "
                        f"passed cases (rate {got.get('rate')}, seed {got.get('seed')}, "
                        f"draw {got.get('draw_id')})")
    for app_id in selected:
        state.console.print(f"  {app_id}")
    passed = (got.get("population") or 0) - len(selected)
    state.console.print(f"{passed} passed through (eligibility confirmed); the drawn cases await "
                        "the authority's decision")


# --------------------------------------------------------------------------- scores


@scores_app.command("import")
@handled
def scores_import(ctx: typer.Context,
                  file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                              help="The score sheet (CSV)."),
                  session: str = typer.Option(..., "--session", help="The exam session id."),
                  as_: str = typer.Option(None, "--as", help="Authority staff id.")):
    """Import a score sheet (CSV). A refused sheet is reported row by row; nothing of it is
    imported then."""
    state = _state(ctx)
    text = read_text_file(file, "score sheet")
    try:
        with state.client() as client:
            got = client.call("scoring", "import_scores", _authority(as_),
                              {"session_id": session, "filename": file.name, "csv": text})
    except KaowuError as exc:
        if not exc.fields:
            raise
        _row_report(state, file, exc)
    _summary(state, f"Imported {file.name} into {session}", got)


def _row_report(state: State, file: Path, exc):
    from cli.scores import row_problems

    rows = row_problems(exc.fields)
    typer.echo(f"kaowu: {file.name} refused: {exc.message}", err=True)
    table = Table()
    for col in ("row", "field", "problem"):
        table.add_column(col, overflow="fold")
    for row, fieldname, problem in rows:
        table.add_row("" if row is None else str(row), fieldname, problem)
    Console(stderr=True, width=state.console.width, highlight=False).print(table)
    typer.echo(f"kaowu: nothing imported; fix the {len(rows)} problem(s) and import again", err=True)
    raise typer.Exit(1)


def _summary(state: State, title: str, got):
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    if isinstance(got, dict):
        for k, v in mask(got).items():
            table.add_row(str(k), json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v))
    else:
        table.add_row("result", str(got))
    state.console.print(table)


@scores_app.command("publish")
@handled
def scores_publish(ctx: typer.Context,
                   session: str = typer.Option(..., "--session", help="The exam session id."),
                   as_: str = typer.Option(None, "--as", help="Authority staff id.")):
    """Publish a session's scores: candidates see them, passes and qualifications follow."""
    state = _state(ctx)
    with state.client() as client:
        got = client.call("scoring", "publish_scores", _authority(as_), session)
    _summary(state, f"Published the scores of {session}", got)


# --------------------------------------------------------------------------- staff


ROLES = ("staff", "authority", "operator")


@staff_app.command("add")
@handled
def staff_add(ctx: typer.Context,
              username: str = typer.Option(..., "--username"),
              name: str = typer.Option(..., "--name", help="The person's name."),
              role: str = typer.Option(..., "--role", help="staff | authority | operator"),
              point: str = typer.Option(None, "--point", help="Registration point code (staff).")):
    """Create a staff account: registration-point staff, exam authority, or operator. The
    password is asked for (hidden, twice), never taken from the command line."""
    if role not in ROLES:
        _fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "staff" and not point:
        _fail("registration-point staff need --point (the registration point's code)")
    if role != "staff" and point:
        _fail(f"--point is for registration-point staff only; an {role} account has none")
    data = {"username": username, "name": name, "role": role, "registration_point": point}
    _staff_problems(data, partial=("password",))  # before anything is asked
    state = _state(ctx)
    if point:
        with state.client() as client:
            _check_point(point, client)
    for attempt in range(PASSWORD_TRIES):
        password = typer.prompt(f"Password ({PASSWORD_RULE})", hide_input=True,
                                confirmation_prompt=True)
        problem = _staff_problems({**data, "password": password}, only="password")
        if problem is None:
            break
        # the rule broken, never the password
        typer.echo(f"kaowu: password: {problem}" + ("; try again" if attempt + 1 < PASSWORD_TRIES
                                                    else ""), err=True)
    else:
        raise typer.Exit(1)
    data["password"] = password
    try:
        with state.client() as client:
            got = client.call("account", "create_staff", data)
    except KaowuError as exc:
        _refusal(exc, secrets=(password,))
    _summary(state, f"Created {role} account {username}", got)


PASSWORD_RULE = "8–64 characters, at least one letter and one digit, not the username"
PASSWORD_TRIES = 3


def _staff_problems(data: dict, partial=(), only: str | None = None) -> str | None:
    """The account service's own rules (its CreateStaffSchema), checked here first so that a
    bad username is refused before the password is asked, and a weak password asked again.
    ``only``: the message for that field, or None; else every problem ends the command.
    The service checks everything again."""
    from services.account.schemas import CreateStaffSchema

    errors = CreateStaffSchema().validate(data, partial=partial)
    if only is not None:
        found = errors.get(only)
        return "; ".join(found) if isinstance(found, list) else found
    if errors:
        typer.echo("kaowu: refused: some fields are not valid", err=True)
        for key, value in errors.items():
            typer.echo(f"  {key}: {'; '.join(value) if isinstance(value, list) else value}",
                       err=True)
        raise typer.Exit(1)
    return None


def _check_point(point: str, client) -> None:
    """A staff account's point must be one of the loaded sessions' registration points."""
    from cli.sessions import registration_points

    known = registration_points(client.call)
    if point in known:
        return
    if not known:
        _fail(f"unknown registration point {point!r}: no exam session is loaded, so there are "
              "no registration points yet (kaowu session load FILE first)")
    listed = "; ".join(f"{code} {name}" for code, name in sorted(known.items()))
    _fail(f"unknown registration point {point!r}; the loaded sessions have: {listed}")


# --------------------------------------------------------------------------- dead letters


def _dlq():
    module = _deadletter_module()
    if module is None:
        raise CliError("dead-letter handling is not available in this installation "
                       "(no shared/deadletter.py)")
    return module


@dlq_app.command("list")
@handled
def dlq_list(ctx: typer.Context,
             limit: int = typer.Option(50, "--limit", "-n", min=1,
                                       help="Describe at most this many of them.")):
    """How many dead letters there are, and what each is (they stay in the queue)."""
    state = _state(ctx)
    module = _dlq()
    counts = module.counts(state.broker)
    for queue, n in sorted(counts.items()):
        state.console.print(f"{queue}: {n} dead letter(s)")
    letters = module.peek(state.broker, limit=limit) if sum(counts.values()) else []
    if not letters:
        return
    table = Table(title="Dead letters, oldest first", title_justify="left")
    for col in ("#", "kind", "where", "what", "error"):
        table.add_column(col, overflow="fold")
    for i, d in enumerate(mask(letters), start=1):
        if d.get("kind") == "poison":
            where = f"{d.get('consumer')} ← {d.get('upstream')} #{d.get('position')}"
            what = str(d.get("type") or "")
        else:
            where = str(d.get("queue") or d.get("exchange") or "")
            what = f"{d.get('content_type')}, {d.get('bytes')} bytes"
        table.add_row(str(i), str(d.get("kind")), where, what, str(d.get("error") or ""))
    state.console.print(table)


@dlq_app.command("show")
@handled
def dlq_show(ctx: typer.Context, limit: int = typer.Option(10, "--limit", "-n", min=1)):
    """The first dead letters in full (left in place; personal data masked), one JSON object
    a line."""
    state = _state(ctx)
    for letter in _dlq().peek(state.broker, limit=limit):
        typer.echo(json.dumps(mask(letter), ensure_ascii=False, default=str))


@dlq_app.command("replay")
@handled
def dlq_replay(ctx: typer.Context,
               limit: int = typer.Option(None, "--limit", "-n", min=1,
                                         help="Replay at most this many (default: all)."),
               yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")):
    """Replay dead letters, oldest first: a poison event through its consumer again, an
    undecodable message back to its queue. One that fails again stays."""
    state = _state(ctx)
    module = _dlq()
    total = sum(module.counts(state.broker).values())
    if not total:
        state.console.print("no dead letters to replay")
        return
    n = min(limit or total, total)
    if not yes:
        typer.confirm(f"Replay {n} dead letter(s)?", abort=True)
    with state.client() as client:
        def call(service, method, args):
            return client.call(service, method, *args)

        def each(info, outcome):
            info = mask(info)
            where = info.get("consumer") or info.get("queue") or "?"
            if isinstance(outcome, Exception):
                state.console.print(Text(f"  still failing: {info.get('kind')} for {where}: "
                                         f"{outcome}", style="red"))
            else:
                state.console.print(f"  replayed: {info.get('kind')} for {where}")

        got = module.replay(state.broker, call, limit=n, on_each=each)
    state.console.print(f"replayed {got.get('replayed', 0)}, still failing {got.get('failed', 0)}")
    if got.get("failed"):
        raise typer.Exit(1)


# --------------------------------------------------------------------------- demo


@app.command()
@handled
def demo(ctx: typer.Context,
         candidates: int = typer.Option(12, "--candidates", "-n", min=1, max=2000),
         minutes_per_window: float = typer.Option(1.0, "--minutes-per-window", "-m",
                                                  help="Length of every window, in minutes (at least 2 s)."),
         seed: int = typer.Option(2026, "--seed", help="Makes the path mix and the draw reproducible."),
         parallel: int = typer.Option(4, "--parallel", min=1, max=64,
                                      help="Worker threads, each with its own RPC connection."),
         spot_rate: float = typer.Option(0.5, "--spot-rate", min=0.01, max=1.0),
         only_planned: bool = typer.Option(
             False, "--only-planned",
             help="Serve only the demo's own candidates. By default the demo also approves "
                  "manual checks, checks in and scores (a pass) people who apply on the web "
                  "site during the season, so they reach a certificate.")):
    """Run a whole season now: a demo session with windows compressed into minutes,
    synthetic candidates on varied paths, staff and authority actions, and the funnel read
    back from the services, compared with what the driver meant to happen.

    Everything is SIMULATED: people, ID numbers, photos, proof and scores. Exit status 1 if
    the services' funnel differs from the plan. Someone registering and applying on the site
    (http://127.0.0.1:8000/) meanwhile is served too (unless --only-planned) and reported
    apart from the funnel.
    """
    from cli.demo import RichReporter, render_result
    from cli.season import SeasonDriver

    if minutes_per_window * 60 < 2:
        _fail("--minutes-per-window must give windows of at least 2 seconds (0.034 minutes)")
    state = _state(ctx)
    with RichReporter(state.console) as reporter:
        # a call that hangs must not eat a whole window: at most half a window per call
        timeout = min(state.timeout, max(3.0, minutes_per_window * 30))
        driver = SeasonDriver(state.factory(), candidates=candidates,
                              minutes_per_window=minutes_per_window, seed=seed,
                              parallelism=parallel, reporter=reporter, spot_rate=spot_rate,
                              timeout=timeout, serve_outside=not only_planned)
        result = driver.run()
    render_result(state.console, result)
    raise typer.Exit(0 if result.ok else 1)


def main():  # python -m cli
    app()
