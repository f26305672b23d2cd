"""The official schemas and rule sets through lxml (XSD) and saxonche (XSLT 3.0): profile selection,
rule ids, "not run" never reported as a pass, and no network access from Saxon."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from connector.einvoice import official
from connector.einvoice.profiles import normalise_profile
from connector.einvoice.reader import read_document

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "einvoice"


def rules(name: str, data: bytes | None = None) -> dict[str, str]:
    reading = read_document(data or (FIXTURES / name).read_bytes(), source=name, official=True)
    return {f.rule: f.level for f in reading.findings}


def test_valid_invoices_pass_schema_and_official_rules() -> None:
    for name in ("ubl-invoice.xml", "ubl-creditnote-381.xml", "cii-en16931.xml"):
        found = rules(name)
        assert found["XSD-RUN"] == "info" and found["OFFICIAL-RUN"] == "info", name
        assert "error" not in found.values(), (name, found)


def test_official_rules_report_rule_ids() -> None:
    from connector.xmlsafe import parse_xml

    text = (FIXTURES / "ubl-invoice.xml").read_bytes().replace(b"<cbc:ID>UBL-2026-001</cbc:ID>", b"", 1)
    result = official.run_official(parse_xml(text), syntax="ubl",
                                   profile=normalise_profile("urn:cen.eu:en16931:2017", syntax="ubl"))
    assert result.ran and {f.rule: f.level for f in result.findings}.get("BR-02") == "error"  # CEN rule id
    assert rules("cii-br-co-16-broken.xml")["BR-CO-16"] == "error"  # native and official agree


def test_profile_selects_the_rule_set() -> None:
    assert official.stylesheet_for("cii", normalise_profile("urn:factur-x.eu:1p0:minimum", syntax="cii")) == \
        official.CII_STYLESHEETS["FX-MINIMUM"]
    assert official.stylesheet_for("cii", normalise_profile("urn:cen.eu:en16931:2017", syntax="cii")) == \
        official.CII_DEFAULT
    assert official.stylesheet_for("zugferd1", normalise_profile(None, syntax="zugferd1")) is None
    minimum = rules("cii-facturx-minimum.xml")
    assert "BR-16" not in minimum  # MINIMUM has no lines by design: EN 16931 rules are not applied to it
    assert rules("zugferd1-comfort.xml")["OFFICIAL-NOT-RUN"] == "info"


def test_an_unavailable_validator_is_not_run_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(official, "UBL_STYLESHEET", "ubl-2.1/no-such-rules.xslt")
    found = rules("ubl-invoice.xml")
    assert found["OFFICIAL-NOT-RUN"] == "warning" and "OFFICIAL-RUN" not in found


def test_saxon_may_not_open_network_resources() -> None:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<x/>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/leak"
    try:
        rules_engine = official.OfficialRules.shared()
        stylesheet = f"""<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><r><xsl:copy-of select="document('{url}')"/></r></xsl:template>
        </xsl:stylesheet>"""
        executable = rules_engine.xslt.compile_stylesheet(stylesheet_text=stylesheet)
        node = rules_engine.processor.parse_xml(xml_text="<a/>")
        with pytest.raises(Exception, match=r"(?i)prohibited|not allowed|access"):
            executable.transform_to_string(xdm_node=node)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
