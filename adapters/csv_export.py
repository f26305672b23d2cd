"""CSV exports of any ERP (Sage, Cegid, EBP, SAP, spreadsheets): one row per invoice or credit note.

Reads: a CSV file, or every ``*.csv`` of a folder (sorted by name), described by a mapping TOML under
``mappings/csv/`` (or a path): encoding (UTF-8, latin-1, UTF-16 with BOM...), delimiter, header row,
date format, decimal and thousands separators, which column holds which field, the sign convention
(positive amounts with a type column, negative totals as credit notes, or debit/credit columns) and the
values of the type and status columns. See ``mappings/csv/generic.toml`` for every key, commented.

Yields: canonical :class:`~connector.model.Invoice` records (``source_id`` is the document number);
a bad row is a :class:`~connector.adapter.Rejected` naming the file, the line, the column and the reason.

Cursor: ``{"files": {NAME: {"sha256": ..., "line": N, "done": bool}}}``. A file read to the end is not
read again while its bytes are the same; a changed file is re-read in full (the store only keeps what
changed); a crash mid-file resumes after the last checkpointed line. Memory does not grow with the file:
rows are streamed and a checkpoint is yielded every ``batch_rows`` rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from connector.adapter import Adapter, Checkpoint, ReadStream, Rejected, status_from_amounts, unsafe_character
from connector.codes import UnknownCode
from connector.config import Key
from connector.errors import ConfigError, MoneyError, Quarantine
from connector.model import Address, Invoice, InvoiceKind, Party, PaymentInstructions
from connector.money import Money

FIELDS = (
    "number", "issue_date", "due_date", "currency", "total_gross", "debit", "credit", "amount_due",
    "total_net", "total_tax", "kind", "status", "buyer_id", "buyer_name", "buyer_vat_id", "buyer_legal_id",
    "buyer_siret", "buyer_country", "buyer_street", "buyer_postal_code", "buyer_city", "order_reference",
    "credited_invoice", "payment_reference", "iban",
)
REQUIRED = ("number", "issue_date", "buyer_name")
CONVENTIONS = ("positive", "negative_is_credit_note", "debit_credit")
SPACES = (" ", "\u00a0", "\u202f")  # space, no-break space, narrow no-break space (French exports)


@dataclass(frozen=True)
class CsvMapping:
    """A compiled mapping: column names per canonical field and the file's formats."""

    name: str
    encoding: str
    delimiter: str
    quotechar: str
    header_row: int
    date_format: str
    decimal_separator: str
    thousands_separator: str
    columns: dict[str, str]
    values: dict[str, str]
    convention: str
    kind_values: dict[str, str]  # raw value (casefolded) -> "invoice" | "credit_note"
    status_values: dict[str, str]  # raw value (casefolded) -> Cessio status

    def parse_amount(self, text: str, currency: str, field: str) -> Money:
        """``"1 234,50"`` (with the mapping's separators), ``"(12.00)"`` or ``"12.00-"`` → Money."""
        try:
            return _parse_amount(text, currency, self.decimal_separator, self.thousands_separator)
        except Quarantine as exc:
            raise Quarantine(exc.reason, field=field, rule=exc.rule) from None

    def parse_date(self, text: str, field: str) -> dt.date:
        try:
            return _strptime(text.strip(), self.date_format)
        except ValueError:
            raise Quarantine(f"{text!r} is not a date in the format {self.date_format}", field=field,
                             rule="csv.date") from None


@functools.lru_cache(maxsize=8192)
def _parse_amount(text: str, currency: str, decimal_separator: str, thousands_separator: str) -> Money:
    """:meth:`CsvMapping.parse_amount`, remembered: a row repeats its amounts (the total and the open amount
    of an unpaid invoice) and Money is immutable. Errors are raised without a field (and never cached)."""
    raw = text.strip()
    negative = False
    if raw.startswith("(") and raw.endswith(")"):
        negative, raw = True, raw[1:-1].strip()
    elif raw.endswith("-"):
        negative, raw = True, raw[:-1].strip()
    if thousands_separator:
        seps = SPACES if thousands_separator in SPACES else (thousands_separator,)
        for sep in seps:
            raw = raw.replace(sep, "")
    if decimal_separator != ".":
        if "." in raw:
            raise Quarantine(f"{text!r} has a '.' but the decimal separator is {decimal_separator!r}",
                             rule="csv.number")
        raw = raw.replace(decimal_separator, ".")
    try:
        money = Money.parse(raw, currency)
    except MoneyError:
        raise Quarantine(f"{text!r} is not an amount in {currency} (decimal separator {decimal_separator!r}, "
                         f"thousands separator {thousands_separator!r}, at most "
                         f"{Money.zero(currency).exponent} decimals)", rule="csv.number") from None
    return -money if negative else money


@functools.lru_cache(maxsize=4096)
def _strptime(text: str, fmt: str) -> dt.date:
    return dt.datetime.strptime(text, fmt).date()


def _casefold_map(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for target, raw in table.items():
        if target == "column":
            continue
        if target not in allowed:
            raise ConfigError(f"{target!r} is not one of {', '.join(allowed)}", key=where)
        for value in [raw] if isinstance(raw, str) else raw:
            out[str(value).strip().casefold()] = target
    return out


def compile_mapping(text: str, name: str) -> CsvMapping:
    """Validate and compile a mapping TOML (pure: text in, mapping out)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=name) from None
    file = data.get("file", {})
    columns = {k: str(v) for k, v in data.get("columns", {}).items()}
    values = {k: str(v) for k, v in data.get("values", {}).items()}
    for key in (*columns, *values):
        if key not in FIELDS:
            raise ConfigError(f"unknown field {key!r} (fields: {', '.join(FIELDS)})", file=name)
    convention = data.get("sign", {}).get("convention", "positive")
    if convention not in CONVENTIONS:
        raise ConfigError(f"sign.convention must be one of {', '.join(CONVENTIONS)}", file=name)
    for field in REQUIRED:
        if field not in columns and field not in values:
            raise ConfigError(f"the mapping must give a column for {field!r}", file=name)
    if convention == "debit_credit":
        if not {"debit", "credit"} <= set(columns):
            raise ConfigError("sign.convention = debit_credit needs debit and credit columns", file=name)
    elif "total_gross" not in columns:
        raise ConfigError("the mapping must give a column for 'total_gross'", file=name)
    if "currency" not in columns and "currency" not in values:
        raise ConfigError("give a currency column or values.currency", file=name)
    delimiter = file.get("delimiter", ",")
    if delimiter == "\\t":
        delimiter = "\t"
    try:
        "".encode(file.get("encoding", "utf-8-sig"))
    except LookupError:
        raise ConfigError(f"unknown encoding {file.get('encoding')!r}", file=name) from None
    return CsvMapping(
        name=name, encoding=file.get("encoding", "utf-8-sig"), delimiter=delimiter,
        quotechar=file.get("quotechar", '"'), header_row=int(file.get("header_row", 1)),
        date_format=file.get("date_format", "%Y-%m-%d"),
        decimal_separator=file.get("decimal_separator", "."),
        thousands_separator=file.get("thousands_separator", ""),
        columns=columns, values=values, convention=convention,
        kind_values=_casefold_map(data.get("kind", {}), ("invoice", "credit_note"), f"{name}: kind"),
        status_values=_casefold_map(data.get("status", {}), ("open", "partially_paid", "paid", "cancelled",
                                                             "credited"), f"{name}: status"),
    )


@functools.lru_cache(maxsize=32)
def load_mapping(ref: str) -> CsvMapping:
    """A mapping by name (``mappings/csv/NAME.toml``) or by path; compiled once per process."""
    path = Path(ref)
    if path.suffix == ".toml" and path.exists():
        return compile_mapping(path.read_text(encoding="utf-8"), str(path))
    resource = resources.files("mappings") / "csv" / f"{ref}.toml"
    if not resource.is_file():
        known = sorted(p.name[:-5] for p in (resources.files("mappings") / "csv").iterdir()
                       if p.name.endswith(".toml"))
        raise ConfigError(f"no CSV mapping {ref!r} (built-in: {', '.join(known)}; or give a .toml path)")
    return compile_mapping(resource.read_text(encoding="utf-8"), f"mappings/csv/{ref}.toml")


def row_to_invoice(mapping: CsvMapping, row: dict[str, str], *, seller: Party, source: str) -> Invoice:
    """Map one row (``{canonical field: text}``, constants applied) to an Invoice (pure)."""
    values = {}
    for field, value in row.items():
        if value is not None and (value := value.strip()):
            values[field] = value
    return _map_values(mapping, values, seller, source)


_NO_PAYMENT = PaymentInstructions()  # shared: most exports give neither an IBAN nor a payment reference


def _map_values(mapping: CsvMapping, values: dict[str, str], seller: Party, source: str) -> Invoice:
    """:func:`row_to_invoice` of ``values``: only the fields whose text is not empty, already stripped (the
    reader builds that dict directly, so the per-field look-ups are plain ``dict.get``)."""
    get = values.get
    columns = mapping.columns

    def need(field: str) -> str:
        value = get(field)
        if value is None:
            raise Quarantine("required value is empty", field=columns.get(field, field), rule="csv.required")
        return value

    def translated(field: str, table: dict[str, str], what: str) -> str | None:
        """The mapping's value for the text of ``field`` through ``table`` (case-insensitive); ``None`` when
        either is empty. A text the table does not know is refused, never guessed."""
        text = get(field)
        if text is None or not table:
            return None
        value = table.get(text.casefold())
        if value is None:
            raise Quarantine(f"{text!r} is not a known {what} ({', '.join(table)})", field=columns.get(field),
                             rule=f"csv.{field}")
        return value

    def amount(field: str, currency: str) -> Money | None:
        value = get(field)
        if value is None:
            return None
        try:
            return _parse_amount(value, currency, mapping.decimal_separator, mapping.thousands_separator)
        except Quarantine as exc:
            raise Quarantine(exc.reason, field=columns.get(field, field), rule=exc.rule) from None

    currency = _currency(need("currency"), columns.get("currency", "currency"))
    if mapping.convention == "debit_credit":
        zero = Money.zero(currency)
        debit, credit = amount("debit", currency), amount("credit", currency)
        gross = (zero if debit is None else debit) - (zero if credit is None else credit)
    else:
        gross = amount("total_gross", currency)
        if gross is None:
            raise Quarantine("required value is empty", field=columns["total_gross"], rule="csv.required")
    kind_name = translated("kind", mapping.kind_values, "document type")
    if kind_name is not None:
        kind = InvoiceKind(kind_name)
    else:
        kind = InvoiceKind.CREDIT_NOTE if gross.is_negative() else InvoiceKind.INVOICE
    flags: tuple[str, ...] = ()
    if gross.is_negative():
        if mapping.convention == "positive" and kind is InvoiceKind.INVOICE:
            flags = ("negative_invoice",)
        gross = -gross
    due = amount("amount_due", currency)
    due = gross if due is None else _positive(due)
    net, tax = amount("total_net", currency), amount("total_tax", currency)
    status = translated("status", mapping.status_values, "status")
    if status is None:
        status = status_from_amounts(gross, due)
    if status == "paid" and get("amount_due") is None:
        due = Money.zero(currency)  # the status column is the only word on payment: nothing is still owed
    legal_id, scheme = get("buyer_legal_id"), "0002"
    if legal_id is None and get("buyer_siret"):
        legal_id, scheme = get("buyer_siret"), "0009"
    try:
        buyer = _buyer(need("buyer_name"), get("buyer_country"), get("buyer_vat_id"),
                       legal_id.replace(" ", "") if legal_id else None, scheme if legal_id else None,
                       get("buyer_street"), get("buyer_city"), get("buyer_postal_code"), get("buyer_id"))
    except UnknownCode as exc:
        raise Quarantine(str(exc), field=columns.get("buyer_country"), rule="csv.country") from None
    number = need("number")
    issue_date = mapping.parse_date(need("issue_date"), columns.get("issue_date", "issue_date"))
    due_text = get("due_date")
    due_date = mapping.parse_date(due_text, columns.get("due_date", "due_date")) if due_text else None
    if due_date is not None and due_date < issue_date:
        raise Quarantine(f"due date {due_date} is before the issue date {issue_date}",
                         field=columns.get("due_date"), rule="csv.due_date")
    if due > gross:
        raise Quarantine(f"open amount {due} is more than the total {gross}",
                         field=columns.get("amount_due"), rule="csv.amount_due")
    preceding = get("credited_invoice")
    iban, reference = get("iban"), get("payment_reference")
    return Invoice(
        number=number, kind=kind, type_code="381" if kind is InvoiceKind.CREDIT_NOTE else "380",
        issue_date=issue_date, currency=currency, total_gross=gross, amount_due=due, seller=seller, buyer=buyer,
        source=source, source_id=number, due_date=due_date, total_net=None if net is None else _positive(net),
        total_tax=None if tax is None else _positive(tax),
        payment=_NO_PAYMENT if iban is None and reference is None else PaymentInstructions(
            iban=iban, reference=reference),
        preceding_invoices=(preceding,) if preceding else (), order_reference=get("order_reference"),
        erp_status=status, flags=flags,
    )


@functools.lru_cache(maxsize=20_000)
def _buyer(name: str, country: str | None, vat_id: str | None, legal_id: str | None, scheme: str | None,
           street: str | None, city: str | None, postal_code: str | None, erp_id: str | None) -> Party:
    """The debtor of a row; exports repeat the same customers, so each distinct one is built once
    (Party is immutable; the cache is bounded, so memory stays flat)."""
    address = Address(lines=(street,) if street else (), city=city, postal_code=postal_code, country=country)
    return Party(name=name, country=country, vat_id=vat_id, legal_id=legal_id, legal_id_scheme=scheme,
                 address=address, erp_id=erp_id)


def _positive(money: Money) -> Money:
    return -money if money.is_negative() else money


@functools.lru_cache(maxsize=256)
def _currency(text: str, column: str) -> str:
    """The ISO 4217 code of a currency cell (validated once per distinct value)."""
    try:
        return Money.zero(text).currency
    except MoneyError as exc:
        raise Quarantine(str(exc), field=column, rule="csv.currency") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CsvExportAdapter(Adapter):
    """CSV exports described by a mapping TOML; see the module docstring."""

    type_name = "csv"
    config_keys: ClassVar[dict[str, Key]] = {
        "path": Key("path", required=True, help="a CSV export file, or a folder of *.csv exports"),
        "mapping": Key("str", "generic", help="mapping name under mappings/csv/ or a .toml path"),
        "batch_rows": Key("int", 2000, help="rows per committed batch (the cursor moves after each)"),
        "seller_name": Key("str", help="the seller of the exported invoices (default: [company] name)"),
        "seller_legal_id": Key("str", help="seller SIREN/SIRET (default: [company] legal_id)"),
        "seller_vat_id": Key("str", help="seller VAT id (default: [company] vat_id)"),
        "seller_country": Key("str", help="seller country (default: [company] country)"),
    }

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.path = Path(self.option("path", required=True))
        self.mapping = load_mapping(str(self.option("mapping", "generic")))
        self.batch_rows = int(self.option("batch_rows", 2000))

    def seller(self) -> Party:
        company = self.company()
        name = self.option("seller_name") or company.get("name")
        if not name:
            raise ConfigError("give seller_name or a [company] name", key=f"sources.{self.name}.seller_name")
        return Party(name=name, country=self.option("seller_country") or company.get("country"),
                     vat_id=self.option("seller_vat_id") or company.get("vat_id"),
                     legal_id=self.option("seller_legal_id") or company.get("legal_id"),
                     legal_id_scheme=company.get("legal_id_scheme") or "0002")

    def files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if self.path.is_file():
            return [self.path]
        raise ConfigError(f"{self.path} does not exist", key=f"sources.{self.name}.path")

    def check(self) -> str:
        files = self.files()
        for path in files:
            header = self._header(path)
            missing = [col for col in self.mapping.columns.values() if col not in header]
            if missing:
                raise ConfigError(f"{path.name}: columns {', '.join(missing)} are missing (header: "
                                  f"{', '.join(header)})", key=f"sources.{self.name}.mapping")
        return f"{len(files)} file(s) readable with mapping {self.mapping.name}"

    def discover(self) -> dict[str, Any]:
        return {"streams": [{"name": "invoices", "primary_key": ["number"], "cursor": "file sha256 + line"}],
                "files": [p.name for p in self.files()], "mapping": self.mapping.name,
                "currencies": [self.mapping.values["currency"]] if "currency" in self.mapping.values else "per row",
                "fields": sorted(self.mapping.columns)}

    def _open(self, path: Path):
        return path.open("r", encoding=self.mapping.encoding, newline="", errors="strict")

    def _header(self, path: Path) -> list[str]:
        try:
            with self._open(path) as handle:
                reader = csv.reader(handle, delimiter=self.mapping.delimiter, quotechar=self.mapping.quotechar)
                for _ in range(self.mapping.header_row - 1):
                    next(reader, None)
                return [h.strip() for h in next(reader, [])]
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path.name} is not {self.mapping.encoding}: {exc.reason} at byte {exc.start}",
                              key=f"sources.{self.name}.mapping") from None

    def read(self, cursor: Any) -> ReadStream:
        state: dict[str, Any] = {"files": dict((cursor or {}).get("files", {}))}
        seller = self.seller()
        for path in self.files():
            sha = file_sha256(path)
            seen = state["files"].get(path.name)
            if seen and seen["sha256"] == sha and seen.get("done"):
                continue
            start_line = seen["line"] if seen and seen["sha256"] == sha else 0
            state["files"][path.name] = {"sha256": sha, "line": start_line, "done": False}
            for rows, (line, item) in enumerate(self._rows(path, seller, start_line), start=1):
                yield item
                if rows % self.batch_rows == 0:
                    state["files"][path.name] = {"sha256": sha, "line": line, "done": False}
                    yield Checkpoint(_copy(state))
            state["files"][path.name] = {"sha256": sha, "line": 0, "done": True}
            yield Checkpoint(_copy(state))
        return state

    def _rows(self, path: Path, seller: Party, start_line: int) -> Iterator[tuple[int, Invoice | Rejected]]:
        mapping = self.mapping
        with self._open(path) as handle:
            reader = csv.reader(handle, delimiter=mapping.delimiter, quotechar=mapping.quotechar, strict=True)
            try:
                for _ in range(mapping.header_row - 1):
                    next(reader, None)
                header = [h.strip() for h in next(reader, [])]
                index = {}
                for field, column in mapping.columns.items():
                    if column not in header:
                        raise ConfigError(f"{path.name}: column {column!r} is missing (header: "
                                          f"{', '.join(header)})", key=f"sources.{self.name}.mapping")
                    index[field] = header.index(column)
                # a column given for a field overrides its constant, even when the cell is empty
                constants = {field: value.strip() for field, value in mapping.values.items()
                             if field not in index and value.strip()}
                cells = list(index.items())
                width = len(header)
                previous = reader.line_num
                name, delimiter = self.name, mapping.delimiter
                for raw in reader:
                    line, first = reader.line_num, previous + 1  # a quoted cell may span lines: name the first
                    previous = line
                    joined = "".join(raw)
                    if line <= start_line or not joined.strip():
                        continue
                    if len(raw) != width:
                        location = f"{path.name}:line {first}"
                        yield line, Rejected(location, Quarantine(
                            f"{len(raw)} cells where the header has {width}", source=location, rule="csv.width"),
                            delimiter.join(raw).encode())
                        continue
                    if _CONTROL.search(joined) is not None:
                        row = dict(mapping.values)
                        for field, position in cells:
                            row[field] = raw[position]
                        problem = _control_in(row, mapping)
                        if problem is not None:
                            location = f"{path.name}:line {first}"
                            yield line, Rejected(location, problem.located(location),
                                                 delimiter.join(raw).encode("utf-8", "backslashreplace"))
                            continue
                    values = constants.copy()
                    for field, position in cells:
                        if cell := raw[position].strip():
                            values[field] = cell
                    try:
                        yield line, _map_values(mapping, values, seller, name)
                    except Quarantine as exc:
                        location = f"{path.name}:line {first}"
                        yield line, Rejected(location, exc.located(location), delimiter.join(raw).encode())
                    except ValueError as exc:  # the model's own checks (empty number, currency mix...)
                        location = f"{path.name}:line {first}"
                        yield line, Rejected(location, Quarantine(str(exc), source=location, rule="csv.model"),
                                             delimiter.join(raw).encode())
            except UnicodeDecodeError as exc:
                location = f"{path.name}:line {reader.line_num + 1}"
                yield reader.line_num + 1, Rejected(location, Quarantine(
                    f"not {mapping.encoding}: {exc.reason}; the rest of the file is not read", source=location,
                    rule="csv.encoding"))
            except csv.Error as exc:
                location = f"{path.name}:line {reader.line_num}"
                yield reader.line_num, Rejected(location, Quarantine(
                    f"malformed CSV: {exc}; the rest of the file is not read", source=location, rule="csv.syntax"))


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")  # fast pre-check of a whole row


def _control_in(row: dict[str, str], mapping: CsvMapping) -> Quarantine | None:
    """A row whose mapped cell holds a control character is quarantined, not cleaned (see
    :func:`connector.adapter.unsafe_character`): the name, number or identifier the ERP holds is what the
    factor must receive, and only the ERP's owner can correct it there."""
    for field, text in row.items():
        reason = unsafe_character(text, multiline=field == "buyer_street")
        if reason is not None:
            return Quarantine(f"{reason}; correct it in the ERP and export again",
                              field=mapping.columns.get(field, field), rule="csv.control_character")
    return None


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {"files": {name: dict(entry) for name, entry in state["files"].items()}}


# -- demo stage "pull ERP export" ------------------------------------------------------------------

DEMO_ROWS = (
    # number, issue offset, due offset, debtor, SIREN, VAT, gross, open, type
    ("FA-2026-0101", -10, 50, "ACME Industrie SA", "552100554", "FR96552100554", "12 000,00", "12 000,00", "FA"),
    ("FA-2026-0102", -8, 52, "Brasserie du Nord SARL", "542051180", "FR59542051180", "4 830,50", "4 830,50", "FA"),
    ("FA-2026-0103", -5, 55, "Transports Girard SAS", "443061841", "FR64443061841", "7 250,00", "7 250,00", "FA"),
    ("FA-2026-0104", -3, 57, "ACME Industrie SA", "552100554", "FR96552100554", "2 400,00", "2 400,00", "FA"),
    ("AV-2026-0007", -2, -2, "Brasserie du Nord SARL", "542051180", "FR59542051180", "480,00", "480,00", "AV"),
    ("FA-2026-0105", -1, 59, "Client Sans Identifiant", "", "", "1 000,00", "1 000,00", "FA"),
    ("FA-2026-0106", -1, 59, "ACME Industrie SA", "552100554", "FR96552100554", "12,345", "12,345", "FA"),
)


def demo_stage(ctx: Any) -> None:
    """Write a small Sage-style export (latin-1, ``;``, decimal comma) into ``ctx.folder``, pull it with
    the ``fr_sage`` mapping, pull it again (nothing new), and print the summaries.

    Sets ``ctx.state["erp_source"]`` (the source name) and ``ctx.state["erp_invoice_keys"]`` (keys of
    the invoices stored by this stage).
    """
    from connector.clock import today

    base = today()
    lines = ["N° pièce;Date;Echéance;Client;SIREN;TVA intracom.;Pays;Devise;Montant TTC;Reste dû;Type;Avoir sur"]
    for number, issue, due, debtor, siren, vat, gross, open_, kind in DEMO_ROWS:
        credited = "FA-2026-0102" if kind == "AV" else ""
        lines.append(";".join([number, (base + dt.timedelta(days=issue)).strftime("%d/%m/%Y"),
                               (base + dt.timedelta(days=due)).strftime("%d/%m/%Y"), debtor, siren, vat, "FR",
                               "EUR", gross, open_, kind, credited]))
    export = ctx.folder / "erp-export" / "ventes.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    adapter = CsvExportAdapter("erp-export", {
        "path": str(export), "mapping": "fr_sage", "_company": {
            "name": "Cessio Demo SAS", "country": "FR", "legal_id": "732829320", "legal_id_scheme": "0002",
            "vat_id": "FR44732829320"}})
    from connector.pull import pull_source

    ctx.echo(f"  {adapter.check()}")
    first = pull_source(ctx.store, adapter)
    ctx.echo(f"  first pull:  {first.line()}")
    for event in first.events:
        ctx.echo(f"    status: {event['invoice_key'].split('|')[-1]} {event['from']} -> {event['to']}")
    for entry in ctx.store.quarantined(limit=10):
        if entry["source"] == "erp-export":
            ctx.echo(f"    quarantined {entry['location']}: {entry['reason']}")
    second = pull_source(ctx.store, CsvExportAdapter("erp-export", adapter.options))
    ctx.echo(f"  second pull: {second.line()} (the same file creates nothing new)")
    ctx.state["erp_source"] = "erp-export"
    ctx.state["erp_invoice_keys"] = [row["invoice_key"] for row in ctx.store.invoice_rows(
        where="source = ?", params=("erp-export",))]


__all__ = ["CsvExportAdapter", "CsvMapping", "compile_mapping", "demo_stage", "load_mapping", "row_to_invoice"]
