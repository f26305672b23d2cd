"""BT-24 (specification identifier) normalisation: an explicit table, never substring tests.

Reads: the profile text of a document. Writes: a normalised profile name such as ``FX-BASIC-WL``,
``EN16931``, ``XRECHNUNG-3.0``, ``PEPPOL-BIS3``, plus whether the identifier used a legacy form.
Substring matching is the classic bug (``basicwl`` contains ``basic``; extended ids contain ``en16931``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Profiles that are not EN 16931-complete: lines, VAT breakdown etc. are absent by design.
NOT_EN16931_COMPLETE = frozenset({"FX-MINIMUM", "FX-BASIC-WL"})

_EXACT: dict[str, str] = {
    "urn:cen.eu:en16931:2017": "EN16931",
    "urn:factur-x.eu:1p0:minimum": "FX-MINIMUM",
    "urn:zugferd.de:2p0:minimum": "FX-MINIMUM",
    "urn:factur-x.eu:1p0:basicwl": "FX-BASIC-WL",
    "urn:zugferd.de:2p0:basicwl": "FX-BASIC-WL",
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic": "FX-BASIC",
    "urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic": "FX-BASIC",
    "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended": "FX-EXTENDED",
    "urn:cen.eu:en16931:2017#conformant#urn:zugferd.de:2p0:extended": "FX-EXTENDED",
    "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr": "FX-EXTENDED-CTC-FR",
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0": "PEPPOL-BIS3",
    "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0": "XRECHNUNG-3.0",
    "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_1.2": "XRECHNUNG-1.2",
    "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.0": "XRECHNUNG-2.0",
    "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.1": "XRECHNUNG-2.1",
    "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.2": "XRECHNUNG-2.2",
    "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.3": "XRECHNUNG-2.3",
    "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_3.0": "XRECHNUNG-3.0",
    "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0#conformant#urn:xeinkauf.de:kosit:extension:xrechnung_3.0": "XRECHNUNG-3.0-EXTENSION",  # noqa: E501
    "urn:cen.eu:en16931:2017#conformant#urn:xeinkauf.de:kosit:extension:xrechnung_3.0": "XRECHNUNG-3.0-EXTENSION",
    # legacy forms seen in FNFE / Mustang samples
    "urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic": "FX-BASIC",
    "urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:extended": "FX-EXTENDED",
    "urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:en16931": "EN16931",
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:en16931": "EN16931",
    # ZUGFeRD 1 (also found, stale, inside CII D16B documents)
    "urn:ferd:crossindustrydocument:invoice:1p0:basic": "ZF1-BASIC",
    "urn:ferd:crossindustrydocument:invoice:1p0:comfort": "ZF1-COMFORT",
    "urn:ferd:crossindustrydocument:invoice:1p0:komfort": "ZF1-COMFORT",
    "urn:ferd:crossindustrydocument:invoice:1p0:extended": "ZF1-EXTENDED",
}
_LEGACY = frozenset(k.lower() for k in _EXACT if ":compliant:" in k or k.endswith(":komfort"))
_BY_LOWER = {k.lower(): v for k, v in _EXACT.items()}
_XRECHNUNG = re.compile(r"^urn:cen\.eu:en16931:2017#compliant#urn:(?:xoev-de:kosit:standard|xeinkauf\.de:kosit)"
                        r":xrechnung_(\d+\.\d+)$")


@dataclass(frozen=True)
class Profile:
    name: str          # normalised, e.g. "FX-BASIC-WL"; "UNKNOWN" when the id is not in the table
    declared: str | None
    legacy: bool = False

    @property
    def en16931_complete(self) -> bool:
        return self.name not in NOT_EN16931_COMPLETE

    @property
    def is_zugferd1(self) -> bool:
        return self.name.startswith("ZF1-")


def normalise_profile(declared: str | None, *, syntax: str) -> Profile:
    """Map a BT-24 text to a :class:`Profile` (case-insensitive on the whole id, whitespace ignored)."""
    if not declared:
        return Profile("UBL-GENERIC" if syntax == "ubl" else "UNKNOWN", None)
    key = "".join(declared.split()).lower()
    if key in _BY_LOWER:
        return Profile(_BY_LOWER[key], declared, legacy=key in _LEGACY)
    match = _XRECHNUNG.match(key)
    if match:
        return Profile(f"XRECHNUNG-{match.group(1)}", declared)
    # CIUS built on EN 16931 we do not list: still an EN 16931 invoice
    if key.startswith("urn:cen.eu:en16931:2017#compliant#"):
        return Profile("EN16931-CIUS", declared)
    if key.startswith("urn:cen.eu:en16931:2017#conformant#"):
        return Profile("EN16931-EXTENSION", declared)
    return Profile("UNKNOWN", declared)
