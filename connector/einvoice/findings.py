"""Findings: what validation says about a document, one per rule, with the field it concerns.

Levels: ``fatal`` (the document cannot be stored: it is quarantined), ``error`` (a rule of EN 16931 or
of the profile is broken: stored, flagged ``validation_errors`` so that no one finances it blindly),
``warning`` and ``info``.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("fatal", "error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    level: str
    rule: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        # what dataclasses.asdict gives, without its deep copy of four strings (every stored finding)
        return {"level": self.level, "rule": self.rule, "message": self.message, "field": self.field}


def worst(findings: list[Finding]) -> str | None:
    """The most severe level present, or ``None``."""
    present = {f.level for f in findings}
    return next((level for level in LEVELS if level in present), None)
