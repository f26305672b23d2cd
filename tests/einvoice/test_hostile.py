"""Hostile inputs: each is refused with a clear error, the process stays alive and its memory bounded.

Billion laughs, external entities, external and network DTDs (a real HTTP server on 127.0.0.1 proves no
request is ever made), a 200 MB XML, a deep tree, the parse time cap, a PDF bomb, truncated XML and PDF,
wrong encodings, empty and binary files. The last test runs ``cessio inspect`` over all of them in a real
subprocess and checks its peak memory.
"""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import ClassVar

import pytest

from connector.errors import Quarantine, UnsafeDocument
from connector.ingest import inspect_file
from connector.xmlsafe import parse_xml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "einvoice"
PROJECT = Path(__file__).resolve().parent.parent.parent
INVOICE = (FIXTURES / "ubl-invoice.xml").read_bytes()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol4;</Invoice>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>&xxe;</ID></Invoice>"""


def pdf_with_stream(name: str, stream: bytes, *, flate: bool) -> bytes:
    """A minimal, well-formed PDF whose only embedded file ``name`` is ``stream`` (raw bytes as stored)."""
    filter_ = b"/Filter /FlateDecode " if flate else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(" + name.encode() + b") 4 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Type /Filespec /F (" + name.encode() + b") /UF (" + name.encode() + b") /EF << /F 5 0 R >> >>",
        b"<< /Type /EmbeddedFile " + filter_ + b"/Length " + str(len(stream)).encode() + b" >>\nstream\n"
        + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _deflated_spaces(megabytes: int) -> bytes:
    """``<a>`` + ``megabytes`` MB of spaces + ``</a>``, deflated chunk by chunk (never held uncompressed)."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"<a>")]
    chunk = b" " * (1024 * 1024)
    parts += [packer.compress(chunk) for _ in range(megabytes)]
    parts += [packer.compress(b"</a>"), packer.flush()]
    return b"".join(parts)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # a DTD server that must never be asked
        _CountingHandler.hits.append(self.path)
        body = b'<!ENTITY x "pwned">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dtd_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    _CountingHandler.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/invoice.dtd"
    server.shutdown()
    server.server_close()


def hostile_files(folder: Path, dtd_url: str) -> dict[str, Path]:
    files = {
        "billion-laughs.xml": BILLION_LAUGHS,
        "xxe.xml": XXE,
        "external-dtd.xml": INVOICE.replace(b"<Invoice ", b'<!DOCTYPE Invoice SYSTEM "invoice.dtd">\n<Invoice ', 1),
        "network-dtd.xml": INVOICE.replace(b"<Invoice ", f'<!DOCTYPE Invoice SYSTEM "{dtd_url}">\n<Invoice '.encode(),
                                           1),
        "late-doctype.xml": b"<?xml version='1.0'?><!--" + b"x" * 5000 + b"-->"
                            + f'<!DOCTYPE Invoice SYSTEM "{dtd_url}">'.encode() + INVOICE.split(b"?>", 1)[1],
        "deep.xml": b"<a>" * 100_000 + b"</a>" * 100_000,
        "truncated.xml": INVOICE[: len(INVOICE) // 2],
        "latin1-declared-utf8.xml": INVOICE.replace(b"Cessio Demo SAS", "Société Démo".encode("latin-1")),
        "unknown-encoding.xml": INVOICE.replace(b'encoding="UTF-8"', b'encoding="x-no-such-charset"'),
        "empty.xml": b"",
        "binary.bin": bytes(range(256)) * 64,
        "pdf-bomb.pdf": pdf_with_stream("factur-x.xml", _deflated_spaces(300), flate=True),
        "truncated.pdf": (FIXTURES / "facturx-en16931.pdf").read_bytes()[:700],
        "pdf-broken-xml.pdf": pdf_with_stream("factur-x.xml", INVOICE[:500], flate=False),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    big = folder / "200mb.xml"
    with big.open("wb") as handle:  # a real 200 MB file on disk, refused before it is read
        handle.write(b"<Invoice>")
        chunk = b"<x>" + b"y" * (1024 * 1024 - 7) + b"</x>"
        for _ in range(200):
            handle.write(chunk)
        handle.write(b"</Invoice>")
    paths["200mb.xml"] = big
    return paths


def test_each_hostile_input_is_refused_with_a_reason(tmp_path: Path, dtd_server: str) -> None:
    paths = hostile_files(tmp_path, dtd_server)
    results = {name: inspect_file(path, official=False) for name, path in paths.items()}
    for name, result in results.items():
        assert result["ok"] is False, name
        assert result["error"] and result["findings"][0]["level"] == "fatal", name
    assert "DOCTYPE" in results["billion-laughs.xml"]["error"]
    assert "DOCTYPE" in results["xxe.xml"]["error"]
    assert "DOCTYPE" in results["network-dtd.xml"]["error"]
    assert "network entity" in results["late-doctype.xml"]["error"]  # libxml2 refuses it (no_network)
    assert "cap" in results["200mb.xml"]["error"]
    assert "caps" in results["pdf-bomb.pdf"]["error"] or "cap" in results["pdf-bomb.pdf"]["error"]
    assert "not well-formed" in results["truncated.xml"]["error"]
    assert "not well-formed" in results["pdf-broken-xml.pdf"]["error"]
    assert results["empty.xml"]["error"] == "empty file"
    assert _CountingHandler.hits == []  # no DTD was ever fetched


def test_time_cap_stops_a_slow_parse() -> None:
    big = b"<Invoice>" + b"<x>1</x>" * 400_000 + b"</Invoice>"  # 3.2 MB: fed in chunks
    with pytest.raises(UnsafeDocument, match="time cap"):
        parse_xml(big, source="slow.xml", max_seconds=0)
    assert parse_xml(big, max_seconds=30).tag == "Invoice"


def test_legitimate_encodings_are_read(tmp_path: Path) -> None:
    text = INVOICE.decode("utf-8").replace("Cessio Demo SAS", "Cessio Démo SAS")
    utf16 = tmp_path / "utf16.xml"
    utf16.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    latin = tmp_path / "latin1.xml"
    latin.write_bytes(text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1"))
    bom = tmp_path / "bom.xml"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    for path in (utf16, latin, bom):
        result = inspect_file(path, official=False)
        assert result["ok"], (path.name, result["error"])
        assert result["invoice"]["seller"]["name"] == "Cessio Démo SAS"


def test_the_process_survives_all_of_them_with_bounded_memory(tmp_path: Path, dtd_server: str) -> None:
    paths = hostile_files(tmp_path, dtd_server)
    good = FIXTURES / "cii-en16931.xml"
    # The child reports its own high-water mark (VmHWM): RUSAGE_CHILDREN would include every other child
    # this pytest worker ever waited for, and ru_maxrss survives execve.
    runner = ("import runpy, sys\n"
              "sys.argv = ['cessio', *sys.argv[1:]]\n"
              "try:\n    runpy.run_module('connector', run_name='__main__')\n"
              "finally:\n"
              "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
              "    sys.stderr.write('@@VmHWM ' + hwm + '\\n')\n")
    done = subprocess.run([sys.executable, "-c", runner, "inspect", "--no-official", *map(str, paths.values()),
                           str(good)], capture_output=True, text=True, timeout=120, cwd=PROJECT)
    peak_kib = int(done.stderr.rsplit("@@VmHWM ", 1)[1].split()[0])
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1  # some files are not invoices
    assert len(lines) == len(paths) + 1
    assert lines[-1]["ok"] is True  # the run went on to the good file after every hostile one
    assert peak_kib < 250 * 1024, f"peak RSS {peak_kib} KiB"
    assert _CountingHandler.hits == []


def test_quarantine_error_names_file_field_and_reason() -> None:
    with pytest.raises(Quarantine) as caught:
        from connector.einvoice.reader import read_document

        read_document((FIXTURES / "bad-missing-number.xml").read_bytes(), source="bad-missing-number.xml")
    assert caught.value.source == "bad-missing-number.xml"
    assert caught.value.field.startswith("BT-1 ")
    assert "missing" in caught.value.reason


def _pdf_with_deflated_attachments(attachments: dict[str, bytes]) -> bytes:
    """A PDF whose embedded files are the given already-deflated streams (declared /FlateDecode)."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    array = ArrayObject()
    for name, deflated in attachments.items():
        stream = DecodedStreamObject()
        stream._data = deflated
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
        stream[NameObject("/Type")] = NameObject("/EmbeddedFile")
        filespec = DictionaryObject({
            NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject(name),
            NameObject("/EF"): DictionaryObject({NameObject("/F"): writer._add_object(stream)})})
        array.extend([TextStringObject(name), writer._add_object(filespec)])
    writer._root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/EmbeddedFiles"): DictionaryObject({NameObject("/Names"): array})})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_attachments_share_one_decompression_budget() -> None:
    from adapters import facturx_pdf

    bomb = zlib.compress(b"\0" * (8 << 20), 9)  # 8 MB of zeros, 8 KB deflated
    xml_bombs = {f"annex-{n}.xml": bomb for n in range(6)}  # each under the per-stream cap, 48 MB together
    with pytest.raises(UnsafeDocument, match=r"total decompression budget.*annex-2\.xml") as caught:
        facturx_pdf.extract_invoice_xml(_pdf_with_deflated_attachments(xml_bombs), source="bombs.pdf",
                                         budget=20 << 20)
    assert caught.value.source == "bombs.pdf"
    # annexes that cannot be the invoice are never decoded: only factur-x.xml is read
    invoice = (FIXTURES / "cii-en16931.xml").read_bytes()
    annexes = {f"annex-{n}.bin": bomb for n in range(6)} | {"factur-x.xml": zlib.compress(invoice)}
    embedded = facturx_pdf.extract_invoice_xml(_pdf_with_deflated_attachments(annexes), budget=1 << 20)
    assert embedded.name == "factur-x.xml" and embedded.xml == invoice
