"""Hostile inputs, generated (never stored: some are hundreds of megabytes), and the readers to feed.

Each generator is Python source evaluated in a bounded child process (``harness.run_bounded``) so that a
reader that blows up takes down only the child, and the child's peak RSS is measured with
``resource.getrusage``. ``PORT`` is a loopback port where the test listens and counts connections: any
connection means a reader fetched an external entity or DTD.
"""

from __future__ import annotations

# name -> Python expression producing the bytes (PORT is substituted by the test)
HOSTILE_XML: dict[str, str] = {
    "billion_laughs": (
        "b'<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">' + b''.join("
        "b'<!ENTITY %s \"%s\">' % (c.encode(), (b'&' + p.encode() + b';') * 10) "
        "for p, c in zip('abcdefgh', 'bcdefghi')) + b']><r>&i;</r>'"),
    "billion_laughs_after_a_long_comment": (
        "b'<?xml version=\"1.0\"?><!--' + b'x' * 8000 + b'--><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">' + b''.join("
        "b'<!ENTITY %s \"%s\">' % (c.encode(), (b'&' + p.encode() + b';') * 10) "
        "for p, c in zip('abcdefgh', 'bcdefghi')) + b']><r>&i;</r>'"),
    "quadratic_blowup": (
        "b'<!DOCTYPE r [<!ENTITY a \"' + b'x' * 100000 + b'\">]><r>' + b'&a;' * 20000 + b'</r>'"),
    "xxe_local_file": "b'<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>'",
    "xxe_utf16": ("'<?xml version=\"1.0\" encoding=\"UTF-16\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
                  "\"file:///etc/passwd\">]><r>&x;</r>'.encode('utf-16')"),
    "xxe_network": "b'<!DOCTYPE r [<!ENTITY x SYSTEM \"http://127.0.0.1:PORT/xxe\">]><r>&x;</r>'",
    "external_dtd": "b'<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"http://127.0.0.1:PORT/evil.dtd\"><r/>'",
    "parameter_entity_dtd": (
        "b'<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:PORT/p.dtd\"> %p;]><r/>'"),
    "xinclude_file": (
        "b'<r xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"file:///etc/passwd\" "
        "parse=\"text\"/><xi:include href=\"http://127.0.0.1:PORT/inc\"/></r>'"),
    "schema_location_fetch": (
        "b'<r xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:schemaLocation=\"urn:x http://127.0.0.1:PORT/s.xsd\"/>'"),
    "deep_nesting_100k": "b'<a>' * 100000 + b'</a>' * 100000",
    "huge_text_node_15mb": "b'<r>' + b'a' * (15 * 2**20) + b'</r>'",
    "huge_attribute_15mb": "b'<r a=\"' + b'a' * (15 * 2**20) + b'\"/>'",
    "many_attributes": "b'<r ' + b' '.join(b'a%d=\"1\"' % i for i in range(200000)) + b'/>'",
    "oversize_25mb": "b'<r>' + b'<x>1</x>' * (25 * 2**20 // 8) + b'</r>'",
    "oversize_200mb": "b'<r>' + b'<x>1</x>' * (201 * 2**20 // 8) + b'</r>'",
    "wrong_encoding_declaration": "'<?xml version=\"1.0\" encoding=\"UTF-16\"?><r>é</r>'.encode('utf-8')",
    "latin1_bytes_declared_utf8": "b'<?xml version=\"1.0\" encoding=\"UTF-8\"?><r>caf\\xe9</r>'",
    "binary_garbage": "bytes(range(256)) * 64",
    "truncated": "b'<?xml version=\"1.0\"?><Invoice xmlns=\"urn:x\"><ID>F1</ID><Amount>12'",
    "empty": "b''",
    "nul_bytes": "b'<r>\\x00\\x00</r>'",
    "processing_instruction_stylesheet": (
        "b'<?xml-stylesheet type=\"text/xsl\" href=\"http://127.0.0.1:PORT/x.xsl\"?><r/>'"),
}

# payloads that are valid XML on their own; a reader may accept them or refuse them as not an invoice,
# but never fetch anything
BENIGN_BUT_SUSPICIOUS = {"xinclude_file", "schema_location_fetch", "processing_instruction_stylesheet",
                         "many_attributes"}

# reader name -> (setup code run once, call code with ``data`` and ``name`` bound)
READERS: dict[str, tuple[str, str]] = {
    "xmlsafe.parse_xml": ("from connector.xmlsafe import parse_xml",
                          "parse_xml(data, source=name)"),
    "einvoice.read_document": ("from connector.einvoice.reader import read_document",
                               "read_document(data, source=name)"),
}

CHILD_BODY = r"""
import sys
from connector.errors import CessioError
PORT = sys.argv[3]
NAME = sys.argv[4]
data = eval(sys.argv[5].replace("PORT", PORT))
payload_mb = len(data) / 2**20
exec(sys.argv[6])
name = NAME
try:
    result = eval(sys.argv[7])
    _report("accepted", payload_mb=payload_mb, leaked="root:" in repr(result))
except CessioError as exc:
    _report("rejected", payload_mb=payload_mb, error=type(exc).__name__, message=str(exc)[:400])
except MemoryError:
    _report("memory_error", payload_mb=payload_mb)
except RecursionError as exc:
    _report("unhandled", payload_mb=payload_mb, error="RecursionError", message=str(exc)[:200])
except Exception as exc:
    _report("unhandled", payload_mb=payload_mb, error=type(exc).__name__, message=str(exc)[:400])
"""
