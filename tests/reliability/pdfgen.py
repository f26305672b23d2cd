"""Hostile PDFs, generated with pypdf (never stored in the repo): bombs, many attachments, loops, broken
xref, encryption, deep nesting. ``python -m tests.reliability.pdfgen KIND OUT`` writes one file."""

from __future__ import annotations

import functools
import io
import sys
import zlib
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    TextStringObject,
)

MINIMAL_CII = (b'<?xml version="1.0" encoding="UTF-8"?><rsm:CrossIndustryInvoice '
               b'xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"/>')


@functools.cache
def _zeros_deflated(size: int) -> bytes:
    packer = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + packer.flush()


def _bomb_stream(writer: PdfWriter, size: int):
    stream = DecodedStreamObject()
    stream._data = _zeros_deflated(size)  # already deflated bytes, declared as such below
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    stream[NameObject("/Type")] = NameObject("/EmbeddedFile")
    return writer._add_object(stream)


def _attach_raw(writer: PdfWriter, name: str, stream_ref) -> None:
    filespec = DictionaryObject({
        NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject(name),
        NameObject("/UF"): TextStringObject(name),
        NameObject("/EF"): DictionaryObject({NameObject("/F"): stream_ref})})
    ref = writer._add_object(filespec)
    names = writer._root_object.setdefault(NameObject("/Names"), DictionaryObject())
    embedded = names.setdefault(NameObject("/EmbeddedFiles"), DictionaryObject())
    array = embedded.setdefault(NameObject("/Names"), ArrayObject())
    array.extend([TextStringObject(name), ref])


def build(kind: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    if kind == "flate_bomb_attachment":
        _attach_raw(writer, "factur-x.xml", _bomb_stream(writer, 128 << 20))  # four times the 32 MB cap
    elif kind == "many_small_bombs":  # each under a per-stream cap, together far over any memory budget
        for n in range(80):
            _attach_raw(writer, f"annex-{n}.bin", _bomb_stream(writer, 30 << 20))
        writer.add_attachment("factur-x.xml", MINIMAL_CII)
    elif kind == "thousand_attachments":
        for n in range(1000):
            writer.add_attachment(f"annex-{n:04d}.txt", b"x" * 100)
        writer.add_attachment("factur-x.xml", MINIMAL_CII)
    elif kind == "encrypted":
        writer.add_attachment("factur-x.xml", MINIMAL_CII)
        writer.encrypt("user-password")
    elif kind == "xml_with_doctype":
        writer.add_attachment("factur-x.xml", b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                              b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:'
                                              b'standard:CrossIndustryInvoice:100">&x;</rsm:CrossIndustryInvoice>')
    elif kind == "no_xml":
        pass
    elif kind == "attachment_name_tree_loop":
        writer.add_attachment("factur-x.xml", MINIMAL_CII)
        names = writer._root_object["/Names"]
        tree = names["/EmbeddedFiles"]
        kid = DictionaryObject()
        kid_ref = writer._add_object(kid)
        kid[NameObject("/Kids")] = ArrayObject([kid_ref])  # a node that is its own child
        tree[NameObject("/Kids")] = ArrayObject([kid_ref])
    elif kind == "deep_nesting":
        writer.add_attachment("factur-x.xml", MINIMAL_CII)
        deep = ArrayObject()
        node = deep
        for _ in range(200):  # nested arrays, then written out much deeper by hand below
            inner = ArrayObject()
            node.append(inner)
            node = inner
        writer._root_object[NameObject("/Deep")] = deep
    elif kind in ("broken_xref", "truncated", "huge_declared_length"):  # damaged after writing, below
        writer.add_attachment("factur-x.xml", MINIMAL_CII)
    else:
        raise SystemExit(f"unknown kind {kind}")
    buffer = io.BytesIO()
    writer.write(buffer)
    data = buffer.getvalue()
    if kind == "broken_xref":
        start = data.rfind(b"startxref")
        data = data[:start] + b"startxref\n999999999\n%%EOF\n"
        data = data.replace(b"0000000000 65535 f", b"garbage-xref-line!")
    elif kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "deep_nesting":
        data = data.replace(b"/Deep [", b"/Deep " + b"[" * 100_000 + b"]" * 100_000 + b" [", 1)
    elif kind == "huge_declared_length":
        data = data.replace(b"/Length ", b"/Length 99999999999", 1)
    return data


KINDS = ("flate_bomb_attachment", "many_small_bombs", "thousand_attachments", "encrypted", "xml_with_doctype",
         "no_xml", "attachment_name_tree_loop", "deep_nesting", "broken_xref", "truncated", "huge_declared_length")

if __name__ == "__main__":
    Path(sys.argv[2]).write_bytes(build(sys.argv[1]))
