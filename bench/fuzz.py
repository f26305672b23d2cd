"""Coverage-guided fuzzing of every Cessio parser for a bounded time (atheris; hypothesis if absent).

Each target (see ``tests/reliability/targets.py``) runs in its own atheris process seeded from the
shared corpus, for ``--seconds`` each. The contract: only a CessioError may escape. A crash is written
to ``tests/fixtures/reliability/crashes/<target>/`` — a regression fixture that
``tests/reliability/test_fuzz.py`` replays on every run — and the run goes on with the next target.

    .venv/bin/python bench/fuzz.py --seconds 600            # every available target, 10 min each
    .venv/bin/python bench/fuzz.py --target xmlsafe --seconds 60
    .venv/bin/python bench/fuzz.py --target camt --cpu-seconds 3600 --corpus-dir ~/.cache/cessio-fuzz

``--cpu-seconds`` spends a budget of CPU time (user + system of the fuzzing processes) rather than wall
time, so a campaign on a shared machine still gives each parser the core-time asked for. ``--corpus-dir``
keeps the grown corpus between campaigns (as OSS-Fuzz does), so a later campaign resumes where the last
stopped instead of starting again from the seeds.

Prints one line per target: wall and CPU seconds, executions, executions per second, crashes; and a total.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

WORKER = r"""
import sys, atheris
sys.path.insert(0, sys.argv[1])
name = sys.argv[2]
with atheris.instrument_imports(include=["connector", "adapters"]):
    import connector.errors
    from tests.reliability.targets import TARGETS, is_known_bug
    target = TARGETS[name][0]()
CessioError = connector.errors.CessioError
known = 0
def one_input(data):
    global known
    try:
        target(data)
    except CessioError:
        pass
    except Exception as exc:
        if not is_known_bug(name, exc):  # an open bug already pinned by a strict xfail: count it, go on
            raise
        known += 1
        if known in (1, 10, 100, 1000, 10000, 100000):
            print(f"@@KNOWN {known}", file=sys.stderr, flush=True)
atheris.Setup([sys.argv[0], *sys.argv[3:]], one_input)
atheris.Fuzz()
"""


def children_cpu_seconds() -> float:
    """CPU time (user + system) of every finished child process of this one."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fuzz_with_atheris(name: str, seconds: int, workdir: Path, cpu_seconds: int = 0) -> dict:
    """Fuzz one target for ``seconds`` of wall time, or until its workers spent ``cpu_seconds`` of CPU."""
    from tests.reliability.targets import CRASH_FIXTURES, seed_files

    corpus = workdir / f"corpus-{name}"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seed_files(name, limit=200):
        if not (corpus / seed.name).exists():
            shutil.copy(seed, corpus / seed.name)  # a private working copy: the shared corpus stays read-only
    corpus_at_start = sum(1 for _ in corpus.iterdir())
    cpu_at_start = children_cpu_seconds()
    crashes = CRASH_FIXTURES / name
    crashes.mkdir(parents=True, exist_ok=True)
    known_fixtures = {p.name for p in crashes.iterdir()}  # regression fixtures of earlier campaigns
    started = time.monotonic()
    executions = 0
    runs = 0
    known_hits = 0  # inputs that hit an open, xfail-pinned bug (logged at 1, 10, 100... per worker run)
    crashed = False
    tail: list[str] = []
    def left() -> float:
        if cpu_seconds:  # wall time is at least the CPU time still owed, so one run usually ends the budget
            return cpu_seconds - (children_cpu_seconds() - cpu_at_start)
        return seconds - (time.monotonic() - started)

    # libFuzzer stops at the first crash: restart on the grown corpus until the time is spent
    while (remaining := left()) > 5 and runs < 50:
        runs += 1
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, str(PROJECT), name, f"-max_total_time={int(remaining)}",
             "-rss_limit_mb=2048", "-timeout=60", "-max_len=65536", f"-artifact_prefix={crashes}/",
             "-print_final_stats=1", str(corpus)],
            cwd=PROJECT, capture_output=True, text=True, timeout=None if cpu_seconds else remaining + 600)
        found = [int(m) for m in re.findall(r"stat::number_of_executed_units:\s+(\d+)", proc.stderr)]
        executions += found[-1] if found else 0
        hits = [int(m) for m in re.findall(r"@@KNOWN (\d+)", proc.stderr)]
        known_hits += hits[-1] if hits else 0
        if proc.returncode != 0:
            crashed = True
            tail += proc.stderr.strip().splitlines()[-12:]
    elapsed = time.monotonic() - started
    found = sorted(p.name for p in crashes.iterdir() if p.name not in known_fixtures) if crashes.is_dir() else []
    if not found and not known_fixtures:
        crashes.rmdir()
    return {"target": name, "engine": "atheris", "seconds": round(elapsed),
            "cpu_seconds": round(children_cpu_seconds() - cpu_at_start), "executions": executions,
            "corpus_files": [corpus_at_start, sum(1 for _ in corpus.iterdir())],
            "exec_per_s": round(executions / max(elapsed, 1)), "crashed": crashed, "crash_fixtures": found,
            "restarts": runs - 1, "known_bug_hits_at_least": known_hits, "tail": tail[-24:]}


def fuzz_with_hypothesis(name: str, seconds: int) -> dict:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from connector.errors import CessioError
    from tests.reliability.targets import CRASH_FIXTURES, available_targets

    target = available_targets()[name]
    count = 0
    crashed: list[bytes] = []
    deadline = time.monotonic() + seconds

    @settings(max_examples=10**9, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=65536))
    def run(data: bytes) -> None:
        nonlocal count
        if time.monotonic() > deadline:
            return
        count += 1
        try:
            target(data)
        except CessioError:
            pass
        except Exception:
            crashed.append(data)
            raise

    started = time.monotonic()
    try:
        run()
    except Exception:
        folder = CRASH_FIXTURES / name
        folder.mkdir(parents=True, exist_ok=True)
        import hashlib
        for data in crashed[-1:]:
            (folder / f"crash-{hashlib.sha1(data).hexdigest()}").write_bytes(data)
    elapsed = time.monotonic() - started
    return {"target": name, "engine": "hypothesis", "seconds": round(elapsed), "executions": count,
            "exec_per_s": round(count / max(elapsed, 1)), "crashed": bool(crashed), "crash_fixtures": [], "tail": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="fuzz only this target (repeatable)")
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--cpu-seconds", type=int, default=0,
                        help="CPU time per target instead of wall time (atheris only)")
    parser.add_argument("--corpus-dir", type=Path,
                        help="keep the grown corpus here between campaigns (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per target")
    args = parser.parse_args(argv)

    from tests.reliability.targets import available_targets

    targets = available_targets()
    names = args.target or sorted(targets)
    try:
        import atheris  # noqa: F401
        engine = "atheris"
    except ImportError:
        engine = "hypothesis"
    budget = f"{args.cpu_seconds} CPU-s" if args.cpu_seconds else f"{args.seconds}s"
    print(f"fuzzing {', '.join(names)} with {engine}, {budget} each", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="cessio-fuzz-") as tmp:
        workdir = args.corpus_dir.expanduser() if args.corpus_dir else Path(tmp)
        for name in names:
            if name not in targets:
                print(f"{name}: not built in this version, skipped", file=sys.stderr)
                continue
            result = (fuzz_with_atheris(name, args.seconds, workdir, args.cpu_seconds) if engine == "atheris"
                      else fuzz_with_hypothesis(name, args.seconds))
            results.append(result)
            if args.json:
                print(json.dumps(result))
            else:
                crashes = len(result["crash_fixtures"]) or int(result["crashed"])
                cpu = f" {result['cpu_seconds']:>6} CPU-s" if "cpu_seconds" in result else ""
                print(f"{name:<14} {result['engine']:<10} {result['seconds']:>6}s{cpu} "
                      f"{result['executions']:>11,} execs "
                      f"{result['exec_per_s']:>7,}/s  crashes: {crashes}")
                for line in result["tail"]:
                    print(f"    {line}")
    total = sum(r["executions"] for r in results)
    print(f"total: {total:,} executions over {len(results)} targets, "
          f"{sum(1 for r in results if r['crashed'])} with crashes")
    return 1 if any(r["crashed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
