"""The delivery harness: a factor on loopback, a sender process killed at random, and the count of what
the factor holds per invoice — D(inv) — after everything settled (scenarios A1, A2, A4, A9)."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.reliability.harness import PROJECT, child_env


class FakeFactorProcess:
    """``tests.reliability.fake_factor`` in its own process; ``url`` once started."""

    def __init__(self, folder: Path, *, faults: str = "", seed: int = 1, dedupe_by_ref: bool = False,
                 slow_seconds: float = 0.7) -> None:
        self.db = folder / "factor.db"
        args = [sys.executable, "-m", "tests.reliability.fake_factor", "--db", str(self.db), "--faults", faults,
                "--seed", str(seed), "--slow-seconds", str(slow_seconds)]
        if dedupe_by_ref:
            args.append("--dedupe-by-ref")
        self.proc = subprocess.Popen(args, cwd=PROJECT, env=child_env(), stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fake factor did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def holdings(self) -> collections.Counter:
        reply = requests.get(f"{self.url}/v1/assignments", timeout=(2, 30))
        reply.raise_for_status()
        return collections.Counter(item["external_ref"] for item in reply.json())

    def held_ids(self) -> dict[str, str]:
        reply = requests.get(f"{self.url}/v1/assignments", timeout=(2, 30))
        return {item["id"]: item["external_ref"] for item in reply.json()}

    def request_counts(self) -> dict[str, int]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT method, coalesce(fault, 'none'), count(*) FROM requests "
                                "GROUP BY 1, 2").fetchall()
        finally:
            conn.close()
        counts: dict[str, int] = collections.Counter()
        for method, fault, n in rows:
            counts[method] += n
            if method == "POST":
                counts[f"fault:{fault}"] += n
        return dict(counts)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> FakeFactorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class DeliveryOutcome:
    invoices: int
    kills: int = 0
    restarts: int = 0
    posts: int = 0
    gets: int = 0
    held: int = 0
    duplicates: int = 0          # invoices the factor holds more than once (double financing)
    lost: int = 0                # invoices the factor does not hold once the sender says it is done
    disagreements: int = 0       # local state that does not match the factor (wrong or missing factor id)
    faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and self.disagreements == 0

    def row(self) -> dict:
        return {"invoices": self.invoices, "kills": self.kills, "posts": self.posts, "gets": self.gets,
                "held": self.held, "duplicates": self.duplicates, "lost": self.lost,
                "disagreements": self.disagreements, "seconds": round(self.seconds, 1), "faults": self.faults}


def run_delivery(folder: Path, *, sender: str, count: int, faults: str, seed: int, kills: int = 0,
                 kill_window: tuple[float, float] = (0.05, 0.6), env: dict[str, str] | None = None,
                 deadline_s: float = 600, dedupe_by_ref: bool = False) -> DeliveryOutcome:
    """Run ``sender`` until it exits 0, SIGKILLing it ``kills`` times at random instants first."""
    rng = random.Random(seed)
    outbox = folder / "outbox.db"
    outcome = DeliveryOutcome(invoices=count)
    started = time.monotonic()
    with FakeFactorProcess(folder, faults=faults, seed=seed, dedupe_by_ref=dedupe_by_ref) as factor:
        command = [sys.executable, "-m", "tests.reliability.senders", sender, "--url", factor.url,
                   "--outbox", str(outbox), "--count", str(count)]
        while time.monotonic() - started < deadline_s:
            proc = subprocess.Popen(command, cwd=PROJECT, env=child_env(**(env or {})))
            outcome.restarts += 1
            if outcome.kills < kills:
                try:
                    proc.wait(rng.uniform(*kill_window))
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    outcome.kills += 1
                    continue
            else:
                proc.wait(max(1.0, deadline_s - (time.monotonic() - started)))
            if proc.returncode == 0:
                break
            if proc.returncode == -signal.SIGKILL:  # a kill hook inside the sender (A4)
                outcome.kills += 1
        else:
            raise TimeoutError(f"sender did not finish in {deadline_s}s")
        outcome.seconds = time.monotonic() - started
        held = factor.holdings()
        ids = factor.held_ids()
        requests_seen = factor.request_counts()
    outcome.posts = requests_seen.get("POST", 0)
    outcome.gets = requests_seen.get("GET", 0)
    outcome.faults = {k.split(":", 1)[1]: v for k, v in requests_seen.items() if k.startswith("fault:")}
    outcome.held = sum(held.values())
    refs = [f"INV-{n:06d}" for n in range(count)]
    outcome.duplicates = sum(1 for ref in refs if held[ref] > 1)
    outcome.lost = sum(1 for ref in refs if held[ref] == 0)
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        local = dict(conn.execute("SELECT ref, factor_id FROM claims WHERE state = 'confirmed'").fetchall())
    finally:
        conn.close()
    if sender == "reference":
        outcome.disagreements = sum(1 for ref in refs if ids.get(local.get(ref) or "") != ref)
    return outcome
