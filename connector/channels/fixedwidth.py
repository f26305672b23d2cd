"""One generic writer (and reader) of factor files whose layout is declared in ``mappings/factors/*.toml``.

Reads: a layout TOML (record types ``header`` / ``detail`` / ``trailer``, each an ordered list of fields
with width, documented position, padding, kind, source key, code maps) and, to write, plain dicts of
values per record (text, ``datetime.date``, integer minor units). Writes: the file's bytes in the
layout's charset and line ending. It also reads such bytes back into records, which is how the
bordereau checks its control totals and how the tests check positions field by field.

Field kinds: ``text`` (left-aligned, space-padded), ``digits`` (right-aligned, zero-padded),
``amount`` (integer minor units, zero-padded, absolute value unless ``sign = "leading_minus"``),
``sign`` (``+``/``-`` of a signed amount), ``decimal`` (CSV: minor units shown with the currency's
decimals), ``date`` (``date_format``), ``filler`` (spaces). A field with ``value`` is a constant; a field
with ``map`` translates its source value through ``[codes.<map>]``. Adding a factor means adding a TOML
file: no code.
"""

from __future__ import annotations

import functools
import string
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.errors import ConfigError, Quarantine
from connector.money import Money

LAYOUT_DIR = Path(__file__).resolve().parent.parent.parent / "mappings" / "factors"
FIELD_KINDS = ("text", "digits", "amount", "sign", "decimal", "date", "filler")
RECORD_TYPES = ("header", "detail", "trailer")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    width: int | None  # None in CSV layouts
    start: int  # 0-based offset in the record (fixed width); column index in CSV
    kind: str = "text"
    source: str | None = None
    value: str | None = None
    map: str | None = None
    date_format: str = "%Y%m%d"
    sign: str = "abs"  # abs | leading_minus
    required: bool = False
    truncate: bool = False
    total: bool = False  # the trailer field carries a control total named by ``source``

    @property
    def pos(self) -> int:
        """1-based documented position."""
        return self.start + 1


@dataclass(frozen=True)
class RecordSpec:
    type: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    format: str  # fixed | csv
    charset: str
    line_ending: str
    records: Mapping[str, RecordSpec]
    codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    record_length: int | None = None
    separator: str = ""  # fixed width: a character written after every field (Eurofactor ";")
    delimiter: str = ";"  # csv
    uppercase: bool = False
    strip_punctuation: bool = False
    code_width: int = 0
    file_name: str = "{factor}_{file_number:04d}.txt"
    split_by: str | None = None

    @property
    def has_trailer(self) -> bool:
        return "trailer" in self.records


# -- compiling layouts --------------------------------------------------------------------------------

def available_layouts() -> list[str]:
    return sorted(p.stem for p in LAYOUT_DIR.glob("*.toml"))


@functools.cache
def load_layout(name: str) -> Layout:
    """Compile ``mappings/factors/<name>.toml`` once; a layout whose widths do not add up is refused."""
    path = LAYOUT_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no factor layout {name!r} (have: {', '.join(available_layouts())})", key="layout")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"layout is not valid TOML: {exc}", file=str(path)) from None
    return compile_layout(data, origin=str(path))


def compile_layout(data: Mapping[str, Any], *, origin: str = "layout") -> Layout:
    fmt = data.get("format", "fixed")
    if fmt not in ("fixed", "csv"):
        raise ConfigError(f"format must be fixed or csv, not {fmt!r}", file=origin, key="format")
    separator = data.get("separator", "")
    record_length = data.get("record_length")
    codes = {k: {str(a): str(b) for a, b in v.items()} for k, v in (data.get("codes") or {}).items()}
    records: dict[str, RecordSpec] = {}
    for rtype, rdata in (data.get("records") or {}).items():
        if rtype not in RECORD_TYPES:
            raise ConfigError(f"unknown record type {rtype!r}", file=origin, key=f"records.{rtype}")
        fields = []
        offset = 0
        for index, fdata in enumerate(rdata.get("fields") or ()):
            where = f"records.{rtype}.fields[{index}]"
            kind = fdata.get("kind", "text")
            if kind not in FIELD_KINDS:
                raise ConfigError(f"unknown field kind {kind!r}", file=origin, key=where)
            width = fdata.get("width")
            if fmt == "fixed":
                if not isinstance(width, int) or width <= 0:
                    raise ConfigError("fixed-width fields need a positive integer width", file=origin, key=where)
                if "pos" in fdata and fdata["pos"] != offset + 1:
                    raise ConfigError(f"field {fdata.get('name')!r} is documented at position {fdata['pos']} "
                                      f"but the widths before it put it at {offset + 1}", file=origin, key=where)
            if fdata.get("map") and fdata["map"] not in codes:
                raise ConfigError(f"no [codes.{fdata['map']}] table", file=origin, key=where)
            fields.append(FieldSpec(
                name=fdata["name"], width=width, start=offset if fmt == "fixed" else index, kind=kind,
                source=fdata.get("source"), value=fdata.get("value"), map=fdata.get("map"),
                date_format=fdata.get("date_format", "%Y%m%d"), sign=fdata.get("sign", "abs"),
                required=bool(fdata.get("required")), truncate=bool(fdata.get("truncate")),
                total=bool(fdata.get("total"))))
            if fmt == "fixed":
                offset += width + len(separator)
        if fmt == "fixed" and record_length is not None and offset != record_length:
            raise ConfigError(f"{rtype} record is {offset} characters, the layout says {record_length}",
                              file=origin, key=f"records.{rtype}")
        records[rtype] = RecordSpec(rtype, tuple(fields))
    if "detail" not in records:
        raise ConfigError("a layout needs a detail record", file=origin, key="records.detail")
    return Layout(
        name=data.get("name", Path(origin).stem), title=data.get("title", ""), format=fmt,
        charset=data.get("charset", "ascii"), line_ending=data.get("line_ending", "\r\n"), records=records,
        codes=codes, record_length=record_length, separator=separator, delimiter=data.get("delimiter", ";"),
        uppercase=bool(data.get("uppercase")), strip_punctuation=bool(data.get("strip_punctuation")),
        code_width=int(data.get("code_width", 0)), file_name=data.get("file_name", Layout.file_name),
        split_by=data.get("split_by"))


# -- writing ------------------------------------------------------------------------------------------

_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def _clean_text(layout: Layout, text: str) -> str:
    if layout.charset.lower() in ("ascii", "us-ascii"):
        # transliterate accents (é -> e) rather than refuse: names are free text
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    if layout.strip_punctuation:
        text = text.translate(_PUNCTUATION)
    text = " ".join(text.replace(layout.delimiter if layout.format == "csv" else "\x00", " ").split())
    return text.upper() if layout.uppercase else text


def _minor_to_decimal(minor: int, currency: str) -> str:
    return str(Money.from_minor(minor, currency).amount)


def render_value(layout: Layout, spec: FieldSpec, values: Mapping[str, Any], *, where: str) -> str:
    """The text of one field, padded to its width (fixed) or bare (CSV)."""
    raw: Any = spec.value if spec.value is not None else (values.get(spec.source) if spec.source else None)
    if spec.map and raw is not None:
        table = layout.codes[spec.map]
        key = str(raw)
        if key not in table:
            raise Quarantine(f"no {spec.map} code for {key!r} in layout {layout.name}", source=where,
                             field=spec.name)
        raw = table[key]
    if spec.required and (raw is None or raw == ""):
        raise Quarantine(f"{spec.name} is required by the {layout.title or layout.name} layout and is missing",
                         source=where, field=spec.name)
    width = spec.width
    if spec.kind == "filler":
        text = ""
    elif spec.kind == "date":
        text = "" if raw is None else raw.strftime(spec.date_format)
    elif spec.kind in ("amount", "digits", "sign", "decimal"):
        if raw is None or raw == "":
            text = ""
        elif spec.kind == "sign":
            text = "-" if int(raw) < 0 else "+"
        elif spec.kind == "decimal":
            text = _minor_to_decimal(int(raw), values.get("currency") or "EUR")
        else:
            if isinstance(raw, float):
                raise TypeError(f"float in amount field {spec.name}")
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise Quarantine(f"{spec.name} {raw!r} is not a whole number", source=where,
                                 field=spec.name) from None
            negative = number < 0
            if negative and spec.sign != "leading_minus":
                number = -number
                negative = False
            digits = str(abs(number))
            if width is not None:
                room = width - (1 if negative else 0)
                if len(digits) > room:
                    raise Quarantine(f"{spec.name} {raw} does not fit in {width} characters", source=where,
                                     field=spec.name)
                digits = digits.rjust(room, "0")
            text = ("-" if negative else "") + digits
    elif spec.value is not None:
        text = spec.value  # constants are written exactly as the layout declares them
    else:
        text = _clean_text(layout, "" if raw is None else str(raw))
    if width is None:
        return text
    if len(text) > width:
        if spec.truncate or spec.kind == "filler":
            text = text[:width]
        else:
            raise Quarantine(f"{spec.name} {text!r} is longer than its {width} characters", source=where,
                             field=spec.name)
    if spec.kind == "digits" and text:
        return text.rjust(width, "0")
    return text.ljust(width, " ")


def render_record(layout: Layout, rtype: str, values: Mapping[str, Any], *, where: str = "record") -> str:
    spec = layout.records[rtype]
    parts = [render_value(layout, f, values, where=where) for f in spec.fields]
    if layout.format == "csv":
        return layout.delimiter.join(parts)
    line = "".join(part + layout.separator for part in parts)
    if layout.record_length is not None and len(line) != layout.record_length:  # a bug, never input
        raise AssertionError(f"{rtype} record is {len(line)} characters, not {layout.record_length}")
    return line


def encode_lines(layout: Layout, lines: Iterable[str], *, where: str = "file") -> bytes:
    text = "".join(line + layout.line_ending for line in lines)
    try:
        return text.encode(layout.charset)
    except UnicodeEncodeError as exc:
        raise Quarantine(f"character {text[exc.start]!r} cannot be written in {layout.charset}",
                         source=where) from None


# -- reading back ---------------------------------------------------------------------------------------

def parse_value(spec: FieldSpec, text: str) -> Any:
    """The value of one field as text (text/date/code fields) or int (digits/amount/decimal minor)."""
    if spec.kind in ("digits", "amount"):
        stripped = text.strip()
        return int(stripped) if stripped else None
    if spec.kind == "decimal":
        stripped = text.strip()
        if not stripped:
            return None
        amount = Decimal(stripped)
        exponent = -amount.as_tuple().exponent if amount.as_tuple().exponent < 0 else 0
        return int(amount.scaleb(exponent)), exponent
    return text.rstrip(" ") if spec.kind != "sign" else text


def split_record(layout: Layout, rtype: str, line: str) -> dict[str, str]:
    """The raw text of each field of ``line`` (positions from the layout)."""
    spec = layout.records[rtype]
    if layout.format == "csv":
        cells = line.split(layout.delimiter)
        return {f.name: (cells[f.start] if f.start < len(cells) else "") for f in spec.fields}
    return {f.name: line[f.start:f.start + f.width] for f in spec.fields}


def record_type_of(layout: Layout, line: str) -> str:
    """Which record type a line is, from its code field (layouts with one record type: detail)."""
    if len(layout.records) == 1 or not layout.code_width:
        return "detail"
    code = line.split(layout.delimiter)[0] if layout.format == "csv" else line[:layout.code_width]
    for rtype, spec in layout.records.items():
        first = spec.fields[0]
        if first.value is not None and first.value == code:
            return rtype
        if first.map and code in layout.codes[first.map].values():
            return rtype
    raise Quarantine(f"unknown record code {code!r} for layout {layout.name}", field="record_code")


def read_records(layout: Layout, data: bytes, *, source: str = "file") -> list[tuple[str, dict[str, str]]]:
    """Split a file into ``(record type, {field: raw text})``; wrong lengths are refused."""
    try:
        text = data.decode(layout.charset)
    except UnicodeDecodeError as exc:
        raise Quarantine(f"not {layout.charset} at byte {exc.start}", source=source) from None
    if layout.line_ending and not text.endswith(layout.line_ending) and text:
        raise Quarantine(f"last line does not end with {layout.line_ending!r}", source=source)
    lines = text.split(layout.line_ending)[:-1] if text else []
    records = []
    for number, line in enumerate(lines, start=1):
        if layout.format == "fixed" and layout.record_length and len(line) != layout.record_length:
            raise Quarantine(f"line {number} is {len(line)} characters, the layout says {layout.record_length}",
                             source=source)
        try:
            rtype = record_type_of(layout, line)
        except Quarantine as exc:
            raise Quarantine(f"line {number}: {exc.reason}", source=source, field=exc.field) from None
        records.append((rtype, split_record(layout, rtype, line)))
    return records
