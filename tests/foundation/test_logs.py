"""Logs go to stderr, as text or JSON, and never carry a secret."""

from __future__ import annotations

import json
import logging

from connector.logs import redact, register_secret, setup_logging

CANARY = "canary-7f3a9e2b-secret"


def test_known_secret_values_are_redacted_everywhere(capsys):
    register_secret(CANARY)
    setup_logging(fmt="json", level="DEBUG")
    log = logging.getLogger("cessio.test")
    log.debug("calling factor with token %s", CANARY)
    try:
        raise RuntimeError(f"401 for https://factor.example/?access_token={CANARY}")
    except RuntimeError:
        log.exception("delivery failed")
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout is for data only
    assert CANARY not in captured.err
    lines = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert lines and all("ts" in line and "level" in line for line in lines)


def test_header_and_token_patterns():
    assert "abc.def" not in redact("Authorization: Bearer abc.def.ghi123")
    assert "hunter22" not in redact('{"password": "hunter22"}')
    assert "s3cr3t" not in redact("client_secret=s3cr3t&grant_type=client_credentials")
    masked = redact("paid from FR7630006000011234567890189 today")
    assert "FR76300060000112345678" not in masked and masked.endswith("0189 today")


def test_ordinary_words_are_not_mistaken_for_credentials():
    # A redaction that eats words makes error messages unreadable ("[REDACTED] variable … is not set").
    for text in ("environment variable CESSIO_FACTOR_TOKEN is not set", "basic checks passed",
                 "session environment ready", "Basic Authentication failed"):
        assert redact(text) == text
    assert "dXNlcjpwYXNz" not in redact("Authorization header was Basic dXNlcjpwYXNz")
    assert "opaquetoken" not in redact("sent Bearer opaquetoken")
