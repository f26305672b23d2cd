"""connector.xmlsafe.iter_xml: the streaming reader large statements use keeps parse_xml's hardening."""

from __future__ import annotations

import time

import pytest

from connector.errors import Quarantine, UnsafeDocument
from connector.xmlsafe import iter_xml


def test_elements_come_as_they_end_and_may_be_cleared():
    seen = []
    for element in iter_xml(b"<a><b>1</b><b>2</b><c><b>3</b></c></a>", ("b",)):
        seen.append(element.text)
        element.clear()
    assert seen == ["1", "2", "3"]


def test_a_doctype_is_refused_even_after_a_long_comment():
    payload = (b'<?xml version="1.0"?><!--' + b"x" * 8192 + b'--><!DOCTYPE a [<!ENTITY e "boom">]>'
               b"<a><b>&e;</b></a>")
    with pytest.raises(UnsafeDocument, match="DOCTYPE"):
        list(iter_xml(payload, ("b",)))


def test_malformed_xml_is_a_quarantine_naming_the_source():
    with pytest.raises(Quarantine, match="not well-formed") as caught:
        list(iter_xml(b"<a><b>1</b><b>", ("b",), source="bank.xml"))
    assert "bank.xml" in str(caught.value)


def test_the_time_cap_counts_parsing_not_the_callers_work():
    data = b"<a>" + b"<b>1</b>" * 5 + b"</a>"
    count = 0
    for _ in iter_xml(data, ("b",), max_seconds=0.5):
        time.sleep(0.2)  # 1 s of the caller's own work in all: the parser itself took microseconds
        count += 1
    assert count == 5


def test_the_byte_cap_is_checked_before_parsing():
    with pytest.raises(UnsafeDocument, match="cap"):
        list(iter_xml(b"<a>" + b" " * 2000 + b"</a>", ("a",), max_bytes=1000))
