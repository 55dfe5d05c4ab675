"""The load: candidates register, complete their profiles and apply, from several threads,
while faults happen. Every command's outcome is recorded: ``accepted`` (the service said
yes), ``refused`` (it said no, with a reason), or ``unknown`` (no answer: the reply was lost
to a fault; the command may or may not have happened, but never twice).

A command whose answer was lost is retried as a person would (register again: "already
registered" then proves the first attempt happened).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench import applicants
from bench.common import candidate
from shared.errors import KaowuError, Unavailable

RETRIES = 6


@dataclass
class Outcomes:
    accepted: dict[str, list] = field(default_factory=dict)  # kind -> keys
    unknown: dict[str, list] = field(default_factory=dict)
    refused: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, bucket: str, kind: str, key):
        with self.lock:
            getattr(self, bucket).setdefault(kind, []).append(key)

    def refuse(self, kind: str, why: str):
        with self.lock:
            self.refused[f"{kind}: {why}"] += 1

    @property
    def commands(self) -> int:
        return sum(len(v) for v in self.accepted.values())


class Load:
    def __init__(self, system, session_id: str, numbers: list[int], threads: int = 4):
        self.system, self.session_id = system, session_id
        self.numbers, self.threads = numbers, threads
        self.outcomes = Outcomes()
        self.accounts: dict[int, str] = {}
        self.photo = applicants.photo_base64()
        self.done = 0

    def run(self):
        workers = [threading.Thread(target=self._worker, args=(self.numbers[i::self.threads],),
                                    daemon=True) for i in range(self.threads)]
        for w in workers:
            w.start()
        return workers

    def _worker(self, numbers):
        for n in numbers:
            try:
                self._candidate(n)
            finally:
                self.done += 1

    def _try(self, kind, key, call, already=None):
        """Call until answered; ``already(exc)`` says a refusal means it happened before."""
        lost = False
        for attempt in range(RETRIES):
            try:
                result = call()
            except Unavailable:  # a moment's outage (a database restart): ask again
                lost = True
                time.sleep(min(2.0, 0.3 * (attempt + 1)))
                continue
            except KaowuError as exc:
                if already is not None and already(exc) and lost:
                    self.outcomes.add("accepted", kind, key)  # the lost attempt did it
                    return None
                self.outcomes.refuse(kind, type(exc).__name__)
                return None
            except Exception:
                lost = True
                time.sleep(min(2.0, 0.3 * (attempt + 1)))
                continue
            self.outcomes.add("accepted", kind, key)
            return result
        self.outcomes.add("unknown", kind, key)
        return None

    def _candidate(self, n):
        s = self.system
        cand = candidate(n, applicants.PASSWORD)
        result = self._try("register", cand["id_number"], lambda: s.call("account", "register", cand),
                           already=lambda exc: "already" in exc.message.lower()
                           or "已" in exc.message)
        if result is None:
            try:
                result = s.call("account", "login", {"username": cand["username"],
                                                     "password": applicants.PASSWORD})
            except Exception:
                return
        account_id = result["account_id"]
        self.accounts[n] = account_id
        for section, data in applicants.sections(n, self.photo).items():
            self._try("profile", (account_id, section),
                      lambda section=section, data=data: s.call(
                          "account", "update_profile_section", account_id, section, data))
        # registration hears of the complete profile through the account service's events
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if s.call("registration", "get_candidate", account_id)["complete"]:
                    break
            except Exception:
                pass
            time.sleep(0.3)
        self._try("submit", account_id,
                  lambda: s.call("registration", "submit_application", account_id,
                                 applicants.application(n, self.session_id)),
                  already=lambda exc: "already" in exc.message.lower())
