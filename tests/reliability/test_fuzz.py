"""Fuzz regressions and a short fuzz pass for every parser (scenario D3).

Only a CessioError may escape a parser, whatever the bytes. Every crash ``bench/fuzz.py`` ever found is
replayed from ``tests/fixtures/reliability/crashes/<target>/``; then a bounded hypothesis pass feeds
random bytes and mutated corpus documents (truncated, bytes flipped, spliced) to each target.
"""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import CessioError
from tests.reliability.targets import KNOWN_BUGS, TARGETS, available_targets, crash_fixtures, is_known_bug, seed_files

AVAILABLE = available_targets()
NAMES = sorted(AVAILABLE)


def only_cessio_errors(name: str, data: bytes) -> None:
    with contextlib.suppress(CessioError):
        AVAILABLE[name](data)


def hits_known_bug(name: str, data: bytes) -> bool:
    """True when ``data`` reproduces an open bug listed in ``targets.KNOWN_BUGS`` (any other crash is raised)."""
    try:
        only_cessio_errors(name, data)
    except Exception as exc:
        if is_known_bug(name, exc):
            return True
        raise
    return False


def tolerate_known_bugs(name: str, data: bytes) -> None:
    """The random passes below look for *new* crashes: an input that hits a known, xfail-pinned bug is not one."""
    hits_known_bug(name, data)


def test_every_registered_target_that_is_built_is_fuzzed():
    assert "xmlsafe" in AVAILABLE
    missing = sorted(set(TARGETS) - set(AVAILABLE))
    print(f"targets not built yet: {missing}")


@pytest.mark.parametrize("name", NAMES)
def test_crash_fixtures_stay_fixed(name):
    """Every fixture of a fixed bug raises only CessioErrors; fixtures of open bugs are replayed below."""
    for fixture in crash_fixtures(name):
        data = fixture.read_bytes()
        if name in KNOWN_BUGS and hits_known_bug(name, data):
            continue
        only_cessio_errors(name, data)


def known_bug_cases():
    for name in sorted(KNOWN_BUGS):
        fixtures = [f for f in crash_fixtures(name) if f.name.startswith("crash-")]
        if name in AVAILABLE and fixtures:
            yield pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name][0]), id=name)


if KNOWN_BUGS:  # defined only while a bug is open, so that no empty parameter set shows up as a skip
    @pytest.mark.parametrize("name", list(known_bug_cases()))
    def test_open_bug_fixtures_raise_only_cessio_errors(name):
        for fixture in crash_fixtures(name):
            only_cessio_errors(name, fixture.read_bytes())


@pytest.mark.parametrize("name", NAMES)
def test_random_bytes_raise_only_cessio_errors(name):
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=4096))
    def run(data: bytes) -> None:
        tolerate_known_bugs(name, data)

    run()


def mutate(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    kind = rng.randrange(5)
    if kind == 0 and data:                      # truncated record or file
        return bytes(data[: rng.randrange(len(data))])
    if kind == 1:                               # flipped bytes
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2 and len(data) > 2:             # a slice duplicated elsewhere
        a, b = sorted(rng.sample(range(len(data)), 2))
        at = rng.randrange(len(data))
        return bytes(data[:at] + data[a:b] + data[at:])
    if kind == 3:                               # re-encoded
        try:
            return seed.decode("utf-8").encode(rng.choice(["latin-1", "utf-16", "cp1252"]), "replace")
        except UnicodeDecodeError:
            return seed.decode("latin-1").encode("utf-8")
    return bytes(data) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))  # trailing garbage


@pytest.mark.corpus
@pytest.mark.parametrize("name", NAMES)
def test_mutated_corpus_documents_raise_only_cessio_errors(name, corpus):
    seeds = [p.read_bytes() for p in seed_files(name, limit=12)]
    if not seeds:
        pytest.skip(f"no corpus seeds for {name}")
    rng = random.Random(f"cessio-{name}")
    for _ in range(300):
        tolerate_known_bugs(name, mutate(rng.choice(seeds), rng))
