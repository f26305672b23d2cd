"""Hostile XML against every XML reader (scenario D1): each is refused with a clear error naming the
file, or (for harmless-but-suspicious documents) accepted without fetching anything; the process stays
alive, no network connection is made, and memory stays bounded (peak RSS of a child process)."""

from __future__ import annotations

import pytest

from tests.reliability.harness import run_bounded
from tests.reliability.hostile import BENIGN_BUT_SUSPICIOUS, CHILD_BODY, HOSTILE_XML, READERS
from tests.reliability.loopback import CountingListener

MEMORY_LIMIT_MB = 1024
# peak RSS allowed above the payload itself (the interpreter, lxml and the store start near 45 MB)
RSS_HEADROOM_MB = 120


@pytest.fixture(scope="module")
def listener():
    """Counts connections: a reader fetching an entity or DTD shows up here."""
    counter = CountingListener()
    yield counter
    counter.close()


def reader_available(reader: str) -> bool:
    try:
        exec(READERS[reader][0], {})
    except ImportError:
        return False
    return True


def feed(reader: str, payload: str, port: int) -> dict:
    setup, call = READERS[reader]
    result = run_bounded(CHILD_BODY, memory_mb=MEMORY_LIMIT_MB, cpu_seconds=60, wall_seconds=120,
                         args=(str(port), f"hostile-{payload}.xml", HOSTILE_XML[payload], setup, call))
    assert result.report, f"child died without a report (rc={result.returncode}): {result.stderr[-1500:]}"
    return result.report


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("payload", sorted(HOSTILE_XML))
def test_hostile_xml_is_refused_clearly_within_bounds(reader, payload, listener):
    if not reader_available(reader):
        pytest.skip(f"{reader} is not built in this version")
    before = listener.count
    report = feed(reader, payload, listener.port)
    assert report["outcome"] != "unhandled", report
    assert report["outcome"] != "memory_error", report
    if report["outcome"] == "accepted":
        assert payload in BENIGN_BUT_SUSPICIOUS, f"{payload} was accepted: {report}"
        assert not report["leaked"], "file content leaked into the parsed document"
    else:
        assert f"hostile-{payload}.xml" in report["message"], f"the error does not name the file: {report}"
    assert listener.count == before, f"{payload}: the reader opened a network connection"
    assert report["peak_rss_mb"] < report["payload_mb"] * 2 + RSS_HEADROOM_MB, report
    assert report["seconds"] < 20, report


def test_control_the_listener_counts_a_connection(listener):
    """Control of the no-connection assertion above: a connection made to the listener is counted."""
    import socket
    import time

    before = listener.count
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
        pass
    deadline = time.monotonic() + 5
    while listener.count == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.count == before + 1
