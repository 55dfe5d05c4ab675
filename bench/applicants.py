"""Candidates who apply (``bench.application``): who they are, their complete profiles, the
simulated education registry that knows some of them, and how one is set up over RPC.

Pure data and plain calls on a proxy: imported by the bench process (to write the
registry) and by the eventlet client processes (to register, complete and apply).

Candidate ``n`` (``bench.common.candidate``: a valid resident ID number, mobile, username)
has one 本科 diploma in a science/engineering major, certificate ``BENCH<n>``, and a
metrology job since 2010 (16 years at the 2026 cut-off: eligible for 一级). Of every 4
candidates 3 are in the registry with that diploma (the auto check passes) and 1 is not
(it fails: AutoCheckFailed, then ProofRequested); of every 10, 9 apply with the commitment
(告知承诺: the auto check runs) and 1 without (ProofRequested straight away).
"""

from __future__ import annotations

import base64
import io
import time

from bench.common import birth_date_and_gender, candidate, resident_id

PASSWORD = "Secret123pass"
LEVEL, POINT = "L1", "2916"
PLEDGE_VERSION = "2026-v1"  # the reference session's pledge (demo_session keeps it)


def numbers(group: int, proc: int, thread: int, count: int) -> list[int]:
    """Distinct candidate numbers for one client thread of one figure (``group``): births
    in 1963-1968, so every ID number is distinct and valid."""
    base = 5_000_000 + group * 500_000 + proc * 50_000 + thread * 2_000
    return list(range(base, base + count))


def in_registry(n: int) -> bool:
    return n % 4 != 3


def with_commitment(n: int) -> bool:
    return n % 10 != 9


def certificate(n: int) -> str:
    return f"BENCH{n:011d}"


def registry_rows(ns) -> list[dict]:
    """The rows of the simulated education registry (``REFERENCE_EDUCATION_CSV``) for the
    candidates among ``ns`` that it knows."""
    return [{"id_number": resident_id(n), "name": "张三", "certificate_no": certificate(n),
             "level": "本科", "school": "同济大学", "major": "测控技术与仪器",
             "major_category": "science_engineering", "graduated_on": "2010-07-01"}
            for n in ns if in_registry(n)]


def photo_base64() -> str:
    """A JPEG the photo check accepts (295x413, white background), as the tests make it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (295, 413), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((90, 100, 205, 300), fill=(60, 40, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def sections(n: int, photo: str) -> dict:
    """The five profile sections of candidate ``n``: with all five saved, 100 % complete."""
    born, gender = birth_date_and_gender(resident_id(n))
    return {
        "photo": {"jpeg_base64": photo},
        "basic": {"gender": gender, "birth_date": born, "ethnicity": "汉族"},
        "education": {"education": [{"level": "本科", "school": "同济大学", "major": "测控技术与仪器",
                                     "major_category": "science_engineering",
                                     "graduated_on": "2010-07-01", "certificate_no": certificate(n)}],
                      "degrees": []},
        "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                              "start": "2010-08-01", "end": None, "metrology": True}]},
        "contact": {"email": f"cand{n}@example.com", "address": "上海市徐汇区桂箐路69号"},
    }


def application(n: int, session_id: str) -> dict:
    """What candidate ``n`` submits (网上报名)."""
    data = {"session_id": session_id, "level": LEVEL, "registration_point": POINT,
            "commitment": None}
    if with_commitment(n):
        data["commitment"] = {"pledge_version": PLEDGE_VERSION,
                              "signed_name": candidate(n)["name"], "agreed": True}
    return data


def application_stream(session_id: str, account_id: str) -> str:
    """The application's stream in registration (``services.registration.domain``)."""
    return f"application-{session_id}.{account_id}"


def set_up(proxy, ns, photo: str, timeout: float = 300.0) -> list[str]:
    """Register candidates ``ns`` and complete their profiles (account service), then wait
    until registration has heard that each is complete. Returns their account ids."""
    ids = []
    for n in ns:
        account_id = proxy.account.register(candidate(n, PASSWORD))["account_id"]
        for section, data in sections(n, photo).items():
            proxy.account.update_profile_section(account_id, section, data)
        ids.append(account_id)
    from shared.errors import NotFound  # imported: RPC answers it as itself

    deadline = time.monotonic() + timeout
    for account_id in ids:
        while True:
            try:
                if proxy.registration.get_candidate(account_id)["complete"]:
                    break
            except NotFound:  # registration has not heard of the account yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"registration did not learn that {account_id} is complete "
                                   f"within {timeout:.0f} s")
            time.sleep(0.2)
    return ids
