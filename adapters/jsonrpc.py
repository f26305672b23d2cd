"""Small JSON-RPC 2.0-style clients for ERPs over HTTP (Tryton, Odoo), with requests and explicit timeouts,
and :class:`ErpAdapter`, what the adapters of those ERPs share.

Transport errors become :class:`~connector.errors.RetryLater`; authentication and access errors a
:class:`~connector.errors.ConfigError`; errors the ERP reports for a call are raised as
:class:`RpcFault` (a ``StopAndAsk``) carrying the ERP's error type and message. Tryton's JSON encodes
Decimal, date and datetime as ``{"__class__": ...}`` objects; :func:`tryton_decode` and
:class:`TrytonEncoder` convert them exactly (amounts never pass through a float).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import requests

from connector.adapter import Adapter, Rejected
from connector.config import SecretRef
from connector.errors import ConfigError, Quarantine, RetryLater, StopAndAsk, parse_retry_after
from connector.model import Invoice


class RpcFault(StopAndAsk):
    """The ERP answered a call with an error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def reveal(value: Any, key: str) -> str:
    """A secret option's value: a :class:`SecretRef`, or an ``env:``/``file:`` reference text."""
    if isinstance(value, SecretRef):
        return value.reveal()
    if isinstance(value, str) and value.split(":", 1)[0] in {"env", "file"} and ":" in value:
        return SecretRef(value, key).reveal()
    raise ConfigError('write the password as "env:VARIABLE" or "file:/path/0600-file", never in clear', key=key)


def tryton_decode(obj: dict[str, Any]) -> Any:
    """``json.loads`` object hook for Tryton's typed values."""
    kind = obj.get("__class__")
    if kind is None:
        return obj
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "datetime":
        return dt.datetime(obj["year"], obj["month"], obj["day"], obj.get("hour", 0), obj.get("minute", 0),
                           obj.get("second", 0), obj.get("microsecond", 0))
    if kind == "time":
        return dt.time(obj.get("hour", 0), obj.get("minute", 0), obj.get("second", 0), obj.get("microsecond", 0))
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        import base64

        return base64.decodebytes(obj["base64"].encode())
    return obj


class TrytonEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return {"__class__": "Decimal", "decimal": str(o)}
        if isinstance(o, dt.datetime):
            return {"__class__": "datetime", "year": o.year, "month": o.month, "day": o.day, "hour": o.hour,
                    "minute": o.minute, "second": o.second, "microsecond": o.microsecond}
        if isinstance(o, dt.date):
            return {"__class__": "date", "year": o.year, "month": o.month, "day": o.day}
        if isinstance(o, float):
            raise TypeError("float in an RPC call near money")
        return super().default(o)


MAX_RETRY_AFTER = 900.0  # seconds: the longest wait an ERP (or its proxy) can ask for


class JsonRpcClient:
    """POST ``{"id", "method", "params"}`` to one URL; the caller adds authentication headers.

    The ERP's JSON dialect is :meth:`encode` and :meth:`decode` (Tryton's typed values here; Odoo's client
    changes both); the HTTP exchange and what its failures mean (:meth:`exchange`) are the same for every ERP."""

    # what a 404 most likely means: the database name is part of a Tryton URL
    not_found_hint = "check the url and database"
    # answers that mean the credentials were refused: a ConfigError (a person fixes the config), not a stop
    refused_statuses: tuple[int, ...] = (401, 403)

    def __init__(self, url: str, *, timeout: tuple[float, float] = (5.0, 60.0)) -> None:
        self.url = url
        self.timeout = timeout
        self.http = requests.Session()
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self._id = 0

    def post(self, payload: dict[str, Any]) -> Any:
        """Send one call (numbered here) and return the decoded answer, errors inside it included."""
        self._id += 1
        response = self.exchange(self.encode(payload))
        try:
            return self.decode(response.content)
        except ValueError:
            raise RetryLater(f"{self.url}: the answer is not JSON (HTTP {response.status_code})") from None

    def encode(self, payload: dict[str, Any]) -> str:
        return json.dumps({"id": self._id, **payload}, cls=TrytonEncoder)

    def decode(self, content: bytes) -> Any:
        return json.loads(content, object_hook=tryton_decode)

    def exchange(self, body: str) -> requests.Response:
        """POST ``body``; the response when it is an HTTP 200, otherwise the Cessio error it means."""
        try:
            response = self.http.post(self.url, data=body.encode(), headers=self.headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise RetryLater(f"{self.url}: no answer within {self.timeout[1]}s ({type(exc).__name__})") from None
        except requests.ConnectionError as exc:
            raise RetryLater(f"{self.url}: cannot connect ({exc.__class__.__name__})") from None
        if response.status_code in self.refused_statuses:
            raise ConfigError(f"{self.url}: authentication refused (HTTP {response.status_code})")
        if response.status_code == 404:
            raise ConfigError(f"{self.url}: not found (HTTP 404); {self.not_found_hint}")
        if response.status_code == 429 or response.status_code >= 500:
            hint = parse_retry_after(response.headers.get("Retry-After"), MAX_RETRY_AFTER)
            raise RetryLater(f"{self.url}: HTTP {response.status_code}", retry_after=hint)
        if response.status_code != 200:
            raise StopAndAsk(f"{self.url}: unexpected HTTP {response.status_code}")
        return response

    def close(self) -> None:
        self.http.close()


class ErpAdapter(Adapter):
    """Base of the adapters of an ERP over JSON-RPC (Tryton, Odoo): the connection options every one has
    (``url``, ``database``, ``login``, ``page_size``, ``overlap_seconds``, ``timeout``, ``company``), the
    company whose invoices are read, the options write-backs need, and how a record that cannot be mapped
    is rejected. Subclasses build their client in :meth:`connect` and name the user's company in
    :meth:`user_company`."""

    supports_write_back = True
    stable_locations = True
    invoice_model = ""  # the ERP's model of customer invoices, as rejected records are named

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.url = str(self.option("url", required=True)).rstrip("/")
        self.database = self.option("database", required=True)
        self.login_name = self.option("login", required=True)
        self.page_size = int(self.option("page_size", 200))
        self.overlap = dt.timedelta(seconds=int(self.option("overlap_seconds", 60)))
        self.client = self.connect(timeout=(5.0, float(self.option("timeout", 60))))
        self._company: int | None = None

    def connect(self, *, timeout: tuple[float, float]) -> JsonRpcClient:
        """The client of this ERP's endpoint (not called yet: the first call logs in)."""
        raise NotImplementedError

    def user_company(self) -> int:
        """The login user's current company, read when ``company`` is not configured."""
        raise NotImplementedError

    def company_id(self) -> int:
        if self._company is None:
            configured = self.option("company")
            self._company = int(configured) if configured is not None else self.user_company()
        return self._company

    def write_back_option(self, key: str, purpose: str) -> Any:
        """Option ``key``, optional for reading but needed to ``purpose`` (e.g. "write payments back")."""
        value = self.option(key)
        if not value:
            raise ConfigError(f"set {key} to {purpose}", key=f"sources.{self.name}.{key}")
        return value

    def mapped(self, record_id: int, number: Any, build: Callable[[], Invoice]) -> Invoice | Rejected:
        """The invoice ``build()`` maps from record ``record_id`` (numbered ``number`` in the ERP), or that record
        rejected with the reason: one bad record is quarantined and the read goes on."""
        record = f"{self.type_name} {self.invoice_model},{record_id}"
        try:
            return build()
        except Quarantine as exc:
            return Rejected(f"{self.name}:{record_id}", exc.located(f"{record} ({number})"))
        except ValueError as exc:
            return Rejected(f"{self.name}:{record_id}",
                            Quarantine(str(exc), source=record, rule=f"{self.type_name}.model"))

    def close(self) -> None:
        self.client.close()
