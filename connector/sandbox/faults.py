"""The ``--faults`` spec of the sandbox factor: ``kind=probability`` pairs, reproducible with a seed.

Kinds (public interface, docs/interfaces.md): ``drop_before`` (connection reset, nothing stored),
``drop_after`` (stored, then reset), ``http_429`` (Retry-After), ``http_500`` (no body), ``http_503``
(Retry-After), ``slow`` (stored, reply delayed past a client's read timeout), ``truncated`` (stored, body
cut short). ``drop_before_commit``/``drop_after_commit`` are accepted as long names. Two options ride in the
same spec: ``retry_after=SECONDS`` (default 1) and ``slow_seconds=SECONDS`` (default 2).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

KINDS = ("drop_before", "drop_after", "http_429", "http_500", "http_503", "slow", "truncated")
BEFORE_COMMIT = ("drop_before", "http_429", "http_500", "http_503")
ALIASES = {"drop_before_commit": "drop_before", "drop_after_commit": "drop_after", "429": "http_429",
           "500": "http_500", "503": "http_503", "slow_reply": "slow", "truncated_body": "truncated"}
OPTIONS = ("retry_after", "slow_seconds")


@dataclass
class Faults:
    probabilities: dict[str, float] = field(default_factory=dict)
    retry_after: int = 1
    slow_seconds: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        """The fault for the next request (None: behave). One uniform draw per request, seeded."""
        with self._lock:
            roll = self._random.random()
        edge = 0.0
        for kind in KINDS:
            edge += self.probabilities.get(kind, 0.0)
            if roll < edge:
                return kind
        return None


def parse_faults(spec: str, seed: int = 0) -> Faults:
    """``"drop_after=0.1,http_503=0.05,retry_after=0"`` → :class:`Faults`; a bad entry is a ValueError."""
    faults = Faults(seed=seed)
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, sep, value = part.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not sep:
            raise ValueError(f"fault {part!r}: expected kind=probability")
        if name in OPTIONS:
            if name == "retry_after":
                faults.retry_after = int(value)
            else:
                faults.slow_seconds = float(value)
            continue
        if name not in KINDS:
            raise ValueError(f"unknown fault kind {name!r}; known: {', '.join(KINDS)}")
        probability = float(value)  # a probability, not money
        if not 0 <= probability <= 1:
            raise ValueError(f"fault {name}: probability {value} is not within 0..1")
        faults.probabilities[name] = probability
    if sum(faults.probabilities.values()) > 1:
        raise ValueError("fault probabilities add up to more than 1")
    faults.__post_init__()
    return faults
