"""The factor account's camt.053 statement read into factor events (fundings, fees, reserve, interest,
collections, chargebacks), classified by the declarative rules of
``mappings/factors/replies/camt053_factor.toml``.

Reads: camt.053 bytes of any ``camt.053.001.xx`` version, through :mod:`connector.xmlsafe`. Writes:
:class:`~connector.model.FactorEvent` objects, one per booked entry (pending entries are skipped), with
the signed amount from the company's view (credit positive) and the bank's reference as event id.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lxml import etree

from connector.channels.replies import EVENT_KINDS, REPLY_DIR
from connector.errors import ConfigError, Quarantine
from connector.model import FactorEvent
from connector.money import Money
from connector.xmlsafe import MAX_STATEMENT_BYTES, parse_xml


@dataclass(frozen=True)
class Rule:
    kind: str
    direction: str | None
    code: str | None
    text: re.Pattern[str] | None


@dataclass(frozen=True)
class CamtRules:
    name: str
    rules: tuple[Rule, ...]
    document_pattern: re.Pattern[str] | None


@functools.cache
def load_rules(name: str = "camt053_factor") -> CamtRules:
    path = REPLY_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no camt rules {name!r}", key="camt_rules")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = []
    for index, raw in enumerate(data.get("rules") or ()):
        if raw.get("kind") not in EVENT_KINDS:
            raise ConfigError(f"unknown event kind {raw.get('kind')!r}", file=str(path), key=f"rules[{index}].kind")
        try:
            text = re.compile(raw["text"], re.IGNORECASE) if raw.get("text") else None
        except re.error as exc:
            raise ConfigError(f"bad regular expression: {exc}", file=str(path), key=f"rules[{index}].text") from None
        rules.append(Rule(raw["kind"], raw.get("direction"), raw.get("code"), text))
    pattern = data.get("document_pattern")
    return CamtRules(data.get("name", name), tuple(rules), re.compile(pattern) if pattern else None)


def _local(element: etree._Element, path: str) -> list[etree._Element]:
    """Namespace-agnostic find-all (camt versions differ only by namespace here)."""
    steps = "/".join(f"*[local-name()='{step}']" for step in path.split("/"))
    return element.xpath(steps)


def _text(element: etree._Element, path: str) -> str | None:
    found = _local(element, path)
    return found[0].text.strip() if found and found[0].text else None


def _date(entry: etree._Element, which: str) -> dt.date | None:
    text = _text(entry, f"{which}/Dt") or _text(entry, f"{which}/DtTm")
    return dt.date.fromisoformat(text[:10]) if text else None


def classify(rules: CamtRules, *, direction: str, code: str | None, text: str) -> str:
    for rule in rules.rules:
        if rule.direction and rule.direction != direction:
            continue
        if rule.code and rule.code != code:
            continue
        if rule.text and not rule.text.search(text):
            continue
        return rule.kind
    return "unclassified"


def read_factor_camt(data: bytes, *, factor: str, source: str = "camt053",
                     rules: CamtRules | None = None) -> list[FactorEvent]:
    rules = rules or load_rules()
    root = parse_xml(data, source=source, max_bytes=MAX_STATEMENT_BYTES)
    namespace = etree.QName(root).namespace or ""
    if not namespace.startswith("urn:iso:std:iso:20022:tech:xsd:camt.053."):
        raise Quarantine(f"not a camt.053 statement (namespace {namespace!r})", source=source)
    digest = hashlib.sha256(data).hexdigest()[:16]
    events = []
    for s_index, statement in enumerate(_local(root, "BkToCstmrStmt/Stmt")):
        account = _text(statement, "Acct/Id/IBAN") or _text(statement, "Acct/Id/Othr/Id") or "?"
        for e_index, entry in enumerate(_local(statement, "Ntry"), start=1):
            where = f"{source}: Stmt[{s_index + 1}]/Ntry[{e_index}]"
            status = _text(entry, "Sts/Cd") or _text(entry, "Sts")
            if status and status.upper() not in ("BOOK",):
                continue  # pending or information entries are not movements yet
            amount_el = _local(entry, "Amt")
            if not amount_el:
                raise Quarantine("entry without Amt", source=where, field="Amt")
            try:
                amount = Money.parse(Decimal(amount_el[0].text.strip()), amount_el[0].get("Ccy"))
            except (InvalidOperation, ValueError, AttributeError) as exc:
                raise Quarantine(f"bad amount: {exc}", source=where, field="Amt") from None
            direction = _text(entry, "CdtDbtInd") or ""
            if direction not in ("CRDT", "DBIT"):
                raise Quarantine(f"CdtDbtInd {direction!r} is not CRDT or DBIT", source=where, field="CdtDbtInd")
            booked = _date(entry, "BookgDt") or _date(entry, "ValDt")
            if booked is None:
                raise Quarantine("entry without booking date", source=where, field="BookgDt")
            texts = [t.text.strip() for path in ("AddtlNtryInf", "NtryDtls/TxDtls/AddtlTxInf",
                                                 "NtryDtls/TxDtls/RmtInf/Ustrd")
                     for t in _local(entry, path) if t.text]
            text = " ".join(texts)
            code = _text(entry, "BkTxCd/Prtry/Cd") or _text(entry, "BkTxCd/Domn/Fmly/SubFmlyCd")
            kind = classify(rules, direction=direction, code=code, text=text)
            match = rules.document_pattern.search(text) if rules.document_pattern else None
            reference = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef") or f"{digest}:{s_index}:{e_index}"
            events.append(FactorEvent(
                factor=factor, event_id=f"camt:{account}:{reference}", kind=kind, occurred_on=booked,
                amount=amount if direction == "CRDT" else -amount,
                detail={"number": match.group(1) if match else None, "text": text, "code": code,
                        "account": account, "value_date": str(_date(entry, "ValDt") or "")}))
    return events


def import_factor_camt(store: object, path: Path, *, factor: str) -> dict[str, object]:
    """All entries of one statement recorded in one transaction, or the file quarantined whole."""
    from connector.channels.iso20022 import resolve_invoice_keys

    data = Path(path).read_bytes()
    try:
        events = resolve_invoice_keys(store, read_factor_camt(data, factor=factor, source=str(path)))
    except Quarantine as exc:
        with store.transaction():
            store.quarantine(exc.located(str(path)), source=f"factor:{factor}", location=str(path), content=data)
        return {"file": str(path), "quarantined": str(exc), "new": 0}
    from connector.channels.replies import record_events

    with store.transaction():
        store.keep_document(data, file_name=Path(path).name)
        new = record_events(store, events)
    return {"file": str(path), "events": len(events), "new": new,
            "unclassified": sum(e.kind == "unclassified" for e in events)}
