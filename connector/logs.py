"""Logging to stderr, as text or JSON lines, with secrets redacted from every record.

Redaction covers Authorization/Cookie headers, tokens, passwords and client secrets, IBANs (GDPR)
and the literal values of every secret the configuration resolved (registered with
:func:`register_secret`), in messages, arguments and exception text alike.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)

_KNOWN_SECRETS: set[str] = set()


def _plain_word(text: str) -> bool:
    return text.isalpha() and (text.islower() or text.isupper() or text.istitle())


_PATTERNS = [
    (re.compile(r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie)(['\"]?\s*[:=]\s*['\"]?)"
                r"([^'\",\n]+)"), r"\1\2[REDACTED]"),
    # After "Bearer" always a token; after "Basic" only base64-looking text, so "basic checks" stays readable.
    (re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{6,})"),
     lambda m: m.group(0) if m.group(1).lower() == "basic" and _plain_word(m.group(2))
     else f"{m.group(1)} [REDACTED]"),
    (re.compile(r"(?i)\b(access_token|refresh_token|client_secret|password|passwd|api_key|session_id|sessionid"
                r"|session|token|secret)"
                r"(['\"]?\s*[:=]\s*['\"]?)([^'\"&\s,}]+)"), r"\1\2[REDACTED]"),
    # IBANs: keep the country and the last 4 characters so staff can still tell accounts apart
    (re.compile(r"\b([A-Z]{2})(\d{2})((?:\s?[A-Z0-9]){8,26}?)((?:\s?[A-Z0-9]){4})\b"),
     lambda m: f"{m.group(1)}**…{m.group(4).replace(' ', '')}"),
]


def register_secret(value: str) -> None:
    """Remember a secret's literal value so it is redacted wherever it appears."""
    if value and len(value) >= 4:
        _KNOWN_SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _KNOWN_SECRETS:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            formatter = logging.Formatter()
            message = message + "\n" + formatter.formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message)
        record.args = None
        for extra in ("job", "event", "file"):  # the extras JsonFormatter writes must be redacted too
            value = getattr(record, extra, None)
            if value is not None:
                setattr(record, extra, redact(value if isinstance(value, str) else str(value)))
        record.run_id = run_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if getattr(record, "run_id", None):
            entry["run_id"] = record.run_id
        for extra in ("job", "event", "file"):
            if hasattr(record, extra):
                entry[extra] = getattr(record, extra)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(*, fmt: str = "text", level: str | int = "INFO") -> None:
    """Configure the root logger once: stderr only (stdout is for data)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # libraries that dump headers and tokens at DEBUG stay at INFO or above
    for noisy in ("urllib3", "requests_oauthlib", "oauthlib", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
