"""Configuration: one TOML file, validated against a declared schema, secrets by reference only.

Every key is declared here (type, default, help) and documented in ``config.example.toml``; unknown
keys, wrong types and secrets written in clear are errors naming the key. Secrets are written as
``env:NAME`` (an environment variable) or ``file:PATH`` (a file readable by its owner only) and are
resolved only when used, never logged.

Rates and amounts are strings (``"0.90"``): TOML floats are refused near money.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from connector.errors import ConfigError

DEFAULT_CONFIG_NAME = "cessio.toml"


# -- schema ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """One configuration key: its kind, default and help text."""

    kind: str  # str, int, bool, decimal, money, date, time, list[str], secret, path, dict
    default: Any = None
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Section:
    """A TOML table with declared keys; ``named`` sections hold one sub-table per name
    (``[sources.erp]``, ``[factors.bpce]``) each validated by ``item``."""

    keys: Mapping[str, Key] = field(default_factory=dict)
    sub: Mapping[str, Section] = field(default_factory=dict)
    named: Section | None = None
    # for [sources.NAME]: the value of this key selects extra keys from ``variants``
    variant_key: str | None = None
    variants: Callable[[str], Mapping[str, Key]] | None = None
    help: str = ""


SECRET_HINT = 'write secrets as "env:VARIABLE" or "file:/path/to/0600-file", never in clear'


def _adapter_keys(type_name: str) -> Mapping[str, Key]:
    from connector.registry import adapter_class

    return getattr(adapter_class(type_name), "config_keys", {})


FACTOR_KEYS: dict[str, Key] = {
    "channel": Key("str", "api", help="how assignments reach the factor",
                   choices=("api", "file", "iso20022")),
    "mode": Key("str", "notified", help="notified: debtors pay the factor; confidential: they pay you",
                choices=("notified", "confidential", "reverse")),
    "base_url": Key("str", help="factor API root, e.g. https://api.factor.example/v1 (api channel)"),
    "token": Key("secret", help="bearer token (api channel)"),
    "client_id": Key("str", help="OAuth2 client id (client-credentials flow)"),
    "client_secret": Key("secret", help="OAuth2 client secret"),
    "token_url": Key("str", help="OAuth2 token endpoint"),
    "verify_tls": Key("bool", True, help="verify the factor's TLS certificate (never off in production)"),
    "ca_bundle": Key("path", help="CA bundle to pin the factor's certificate"),
    "connect_timeout": Key("decimal", Decimal("5"), help="seconds to connect"),
    "read_timeout": Key("decimal", Decimal("30"), help="seconds to wait for a reply"),
    "deadline": Key("decimal", Decimal("120"), help="seconds for one delivery including retries"),
    "layout": Key("str", help="bordereau layout name under mappings/factors/ (file channel)"),
    "outbox_dir": Key("path", help="where bordereau files are released (file channel)"),
    "layout_params": Key("dict", help="values a layout needs beyond [company], e.g. "
                                      "{ emitters = { D = \"12345\", E = \"12346\" }, buyer_ids = { ... } }"),
    "replies_dir": Key("path", help="where the factor's reply files land: acks, tsin.007/008/013, statements "
                                    "(file and iso20022 channels)"),
    "reply_layout": Key("str", help="CSV reply layout under mappings/factors/replies/ (file channel)"),
    "sftp_url": Key("str", help="also upload released files to sftp://USER@HOST[:PORT]/FOLDER (needs paramiko)"),
    "sftp_host_key": Key("str", help='the SFTP server\'s host key, "TYPE BASE64" as in known_hosts (required '
                                     "with sftp_url: never trusted on first use)"),
    "sftp_password": Key("secret", help="SFTP password (or sftp_key)"),
    "sftp_key": Key("path", help="SFTP private key file (mode 0600)"),
    "client_number": Key("str", help="your contract/adherent number at the factor"),
    "currencies": Key("list[str]", ["EUR"], help="currencies the factor accepts"),
    "countries": Key("list[str]", [], help="debtor countries accepted (empty: all)"),
    "max_country_risk": Key("int", 4, help="highest country-risk class accepted (1 best .. 7 worst)"),
    "advance_rate": Key("decimal", Decimal("0.90"), help="share of each invoice advanced (\"0.90\")"),
    "reserve_rate": Key("decimal", Decimal("0.10"), help="retenue de garantie held back (\"0.10\")"),
    "fee_rate": Key("decimal", Decimal("0.0025"), help="factoring commission on assigned amounts"),
    "fee_vat_rate": Key("decimal", Decimal("0.20"), help="VAT rate on the factoring commission"),
    "interest_rate": Key("decimal", Decimal("0.045"), help="yearly financing interest rate"),
    "cutoff_times": Key("list[str]", ["16:00"], help="local times after which a batch waits for tomorrow"),
    "max_tenor_days": Key("int", 120, help="longest payment term accepted, in days"),
    "max_age_days": Key("int", 90, help="oldest invoice accepted, in days since issue"),
    "min_amount": Key("decimal", Decimal("0"), help="smallest invoice amount accepted"),
    "concentration_limit": Key("decimal", Decimal("0.25"), help="largest share of the portfolio per debtor"),
    "grace_days": Key("int", 60, help="days after due date before the factor charges back"),
    "require_limit": Key("bool", True, help="assign only to debtors with an approved, valid limit"),
    "request_limits": Key("bool", True, help="ask the factor for a limit for debtors that have none (api)"),
    "default_limit_request": Key("decimal", Decimal("100000"), help="amount asked per new debtor limit"),
    "country_risk": Key("list[str]", [], help='country-risk classes overriding the built-in table, "CC=N"'),
    "intra_group": Key("list[str]", [], help="debtor keys, VAT or legal ids of your own group (excluded)"),
    "concentration_floor": Key("decimal", Decimal("50000"),
                               help="portfolio size below which the concentration rule is not applied"),
    "batch_size": Key("int", 50, help="assignments per batch (bordereau)"),
    "lease_seconds": Key("int", 180, help="how long one sender holds a claimed batch (keep it above deadline)"),
    "max_retry_after": Key("decimal", Decimal("900"), help="cap on a factor's Retry-After, in seconds"),
    "breaker_threshold": Key("int", 5, help="consecutive failures that open the circuit breaker"),
    "breaker_cooldown": Key("decimal", Decimal("30"), help="seconds the breaker stays open before a probe"),
}

SCHEMA = Section(sub={
    "store": Section(keys={
        "path": Key("path", "cessio.db", help="the SQLite store (relative to the config file)"),
    }),
    "log": Section(keys={
        "format": Key("str", "text", choices=("text", "json")),
        "level": Key("str", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    }),
    "company": Section(keys={
        "name": Key("str", required=True, help="your legal name (the seller)"),
        "country": Key("str", "FR", help="ISO 3166 country"),
        "vat_id": Key("str"),
        "legal_id": Key("str", help="SIREN, SIRET, LEI..."),
        "legal_id_scheme": Key("str", "0002", help="ISO 6523 ICD of legal_id (0002 SIREN, 0009 SIRET)"),
        "iban": Key("str", help="your collection account"),
        "group_debtors": Key("list[str]", [], help="party keys or VAT ids of group companies (never financed)"),
        "default_payment_days": Key("int", 30, help="due date when an invoice states none"),
    }),
    "inbox": Section(keys={
        "path": Key("path", help="folder watched for e-invoices and bank or factor statements, each file routed "
                                 "by its content"),
        "min_age_seconds": Key("int", 5, help="a file younger than this may still be being written"),
        "official_rules": Key("bool", False, help="also run the official EN 16931 / Factur-X rules (saxonche) "
                                                  "on each e-invoice; the native rules always run"),
    }),
    "agent": Section(keys={
        "timezone": Key("str", "Europe/Paris", help="IANA zone in which cron times are read"),
        "pull_every_minutes": Key("int", 15, help="ERP pull interval (each source may override it)"),
        "inbox_every_minutes": Key("int", 5, help="how often the inbox folder is scanned"),
        "assign_cron": Key("str", "0 9-16 * * mon-fri",
                           help="minute hour day month weekday (a 6th leading field is seconds); "
                                "assignment runs per factor, cut-off times are applied by each factor"),
        "factor_events_every_minutes": Key("int", 15, help="how often each factor's events feed is read"),
        "reconcile_every_minutes": Key("int", 30, help="statement matching, then ledger posting"),
        "report_cron": Key("str", "0 7 * * *", help="when the daily HTML report is written"),
        "report_dir": Key("path", "reports", help="folder of the daily HTML reports (relative to the config)"),
        "interval_unit": Key("str", "minutes", choices=("minutes", "seconds"),
                             help="unit of every *_every_minutes key; seconds is for tests and demos only"),
        "workers": Key("int", 2, help="jobs that may run at the same time (each has its own store connection)"),
        "stop_timeout_seconds": Key("int", 20, help="on SIGTERM, how long running jobs may take to finish"),
        "alert_after_failures": Key("int", 3, help="failures in a row after which a job raises an alert"),
        "health_port": Key("int", 0, help="loopback port of the health endpoint (0: off)"),
    }),
    "reconciliation": Section(keys={
        "auto_threshold": Key("decimal", Decimal("0.95"), help="confidence from which a match is auto"),
        "fee_tolerance": Key("decimal", Decimal("25"), help="short payment booked as bank fee up to this"),
        "discount_tolerance_rate": Key("decimal", Decimal("0.03"), help="early-payment discount accepted"),
        "accounts": Key("list[str]", [], help="your bank accounts (IBAN) whose statements are imported; "
                                              "transfers between them are not customer payments"),
        "factor_accounts": Key("list[str]", [], help='current accounts at factors, "FACTOR=ACCOUNT": their '
                                                     "statements are reconciled against the factor's events"),
        "factor_payers": Key("list[str]", [], help="IBANs or names the factors pay you from (fundings, reserve "
                                                   "releases: not customer payments)"),
        "gap_window_days": Key("int", 5, help="days a factor movement may be booked apart from Cessio's event"),
    }),
    "ledger": Section(keys={
        "customers": Key("str", "411000", help="customers (receivables)"),
        "factor_current": Key("str", "467000", help="factor current account"),
        "reserve": Key("str", "467100", help="reserve (retenue de garantie) held by the factor"),
        "fees": Key("str", "622500", help="factoring fees and interest"),
        "vat_on_fees": Key("str", "445660", help="deductible VAT on the fees"),
        "bank": Key("str", "512000", help="bank"),
        "bank_charges": Key("str", "627000", help="bank charges written off on short payments"),
        "discounts": Key("str", "665000", help="early-payment discounts granted"),
        "writeoff": Key("str", "658000", help="other write-offs"),
        "unapplied": Key("str", "471000", help="cash received not applied to an invoice (suspense)"),
        "journal": Key("str", "FACT", help="journal of factor movements"),
        "bank_journal": Key("str", "BQ", help="journal of customer receipts"),
        "journal_labels": Key("list[str]", ["FACT=Affacturage", "BQ=Banque"],
                              help='journal names for the FEC, "CODE=Label"'),
        "write_back": Key("bool", True, help="record reconciled payments in the source ERP when it supports it"),
    }),
    "sources": Section(named=Section(
        keys={"type": Key("str", required=True, help="adapter: tryton, odoo, csv, einvoice-folder..."),
              "enabled": Key("bool", True),
              "every_minutes": Key("int", help="pull interval overriding agent.pull_every_minutes")},
        variant_key="type", variants=_adapter_keys)),
    "factors": Section(named=Section(keys=FACTOR_KEYS)),
})


# -- secrets -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret; the value is read only by :meth:`reveal`, and never printed."""

    ref: str
    key: str

    def reveal(self) -> str:
        """The secret's value; it is registered for redaction so no log line can carry it."""
        from connector.logs import register_secret

        value = self._read()
        register_secret(value)
        return value

    def _read(self) -> str:
        scheme, _, target = self.ref.partition(":")
        if scheme == "env":
            value = os.environ.get(target)
            if value is None:
                raise ConfigError(f"environment variable {target} is not set", key=self.key)
            return value
        path = Path(target).expanduser()
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}", key=self.key) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"secret file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                              "chmod 600 it", key=self.key)
        return path.read_text(encoding="utf-8").strip()

    def __repr__(self) -> str:
        return f"SecretRef({self.ref.split(':')[0]}:…)"

    __str__ = __repr__


def _check_secret(value: Any, key: str) -> SecretRef:
    if not isinstance(value, str):
        raise ConfigError(f"expected a secret reference, got {type(value).__name__}; {SECRET_HINT}", key=key)
    scheme, sep, target = value.partition(":")
    if not sep or scheme not in {"env", "file"} or not target:
        raise ConfigError(f"secret written in clear; {SECRET_HINT}", key=key)
    ref = SecretRef(value, key)
    if scheme == "file":
        path = Path(target).expanduser()
        if path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"secret file {path} is readable by others "
                              f"(mode {stat.S_IMODE(path.stat().st_mode):o}); chmod 600 it", key=key)
    return ref


# -- validation --------------------------------------------------------------------------------------

def _check_value(spec: Key, value: Any, key: str, base: Path) -> Any:
    kind = spec.kind
    if kind == "secret":
        return _check_secret(value, key)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {type(value).__name__}", key=key)
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"expected one of {', '.join(spec.choices)}, got {value!r}", key=key)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {type(value).__name__}", key=key)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {type(value).__name__}", key=key)
        return value
    if kind == "decimal":
        if isinstance(value, float):
            raise ConfigError(f'write decimals as strings (e.g. "{value}") so they stay exact', key=key)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"expected a decimal string, got {type(value).__name__}", key=key)
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{value!r} is not a decimal number", key=key) from None
        if not result.is_finite():
            raise ConfigError(f"{value!r} is not a finite number", key=key)
        return result
    if kind == "path":
        if not isinstance(value, str):
            raise ConfigError(f"expected a path string, got {type(value).__name__}", key=key)
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    if kind == "date":
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise ConfigError(f"expected a date (YYYY-MM-DD), got {type(value).__name__}", key=key)
        return value
    if kind == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("expected a list of strings", key=key)
        return list(value)
    if kind == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"expected a table, got {type(value).__name__}", key=key)
        return value
    raise ConfigError(f"schema error: unknown kind {kind}", key=key)


def _validate(section: Section, data: Mapping[str, Any], prefix: str, base: Path) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a table, got {type(data).__name__}", key=prefix or None)
    if section.named is not None:
        return {name: _validate(section.named, value, f"{prefix}.{name}", base)
                for name, value in data.items()}
    keys: dict[str, Key] = dict(section.keys)
    if section.variant_key and section.variants and section.variant_key in data:
        try:
            keys.update(section.variants(str(data[section.variant_key])))
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]), key=f"{prefix}.{section.variant_key}") from None
    out: dict[str, Any] = {}
    for name, value in data.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in section.sub:
            out[name] = _validate(section.sub[name], value, dotted, base)
        elif name in keys:
            out[name] = _check_value(keys[name], value, dotted, base)
        else:
            known = sorted(set(keys) | set(section.sub))
            raise ConfigError(f"unknown key (known here: {', '.join(known) or 'none'})", key=dotted)
    for name, spec in keys.items():
        if name not in out:
            if spec.required:
                raise ConfigError("required key is missing", key=f"{prefix}.{name}" if prefix else name)
            if spec.default is not None:
                default = spec.default
                out[name] = _check_value(spec, default, name, base) if spec.kind == "path" else default
            else:
                out[name] = None
    for name, sub in section.sub.items():
        if name not in out:
            out[name] = _validate(sub, {}, f"{prefix}.{name}" if prefix else name, base) \
                if not _has_required(sub) else None
    return out


def _has_required(section: Section) -> bool:
    return any(k.required for k in section.keys.values())


@dataclass(frozen=True)
class Config:
    """A validated configuration. ``data`` holds sections by name; use the helpers below."""

    data: dict[str, Any]
    path: Path | None = None

    def section(self, name: str) -> dict[str, Any]:
        return self.data.get(name) or {}

    @property
    def store_path(self) -> Path:
        return self.section("store")["path"]

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        return self.section("sources")

    @property
    def factors(self) -> dict[str, dict[str, Any]]:
        return self.section("factors")


def parse_config(text: str, *, path: Path | None = None) -> Config:
    """Validate TOML text; ``path`` names the file in errors and anchors relative paths."""
    where = str(path) if path else "<config>"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=where) from None
    base = path.parent if path else Path.cwd()
    try:
        data = _validate(SCHEMA, raw, "", base)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=where) from None
    return Config(data=data, path=path)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=str(path)) from None
    return parse_config(text, path=path.resolve())


def empty_config(store_path: Path) -> Config:
    """A configuration with only a store, for commands that need no config file."""
    data = _validate(SCHEMA, {}, "", store_path.parent)
    data["store"]["path"] = store_path
    return Config(data=data)


# -- the documented example ---------------------------------------------------------------------------

def _toml_value(spec: Key, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)) and spec.kind != "decimal":
        return str(value)
    if isinstance(value, Decimal):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, Path):
        return f'"{value}"'
    return json_str(str(value))


def json_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


_EXAMPLES: dict[str, str] = {
    "token": "env:CESSIO_FACTOR_TOKEN", "client_secret": "file:/etc/cessio/factor-client-secret",
    "password": "env:CESSIO_ERP_PASSWORD", "api_key": "env:CESSIO_ERP_API_KEY",
}


def _render_keys(lines: list[str], keys: Mapping[str, Key], *, skip: tuple[str, ...] = ()) -> None:
    for name, spec in keys.items():
        if name in skip:
            continue
        doc = spec.help
        if spec.choices:
            doc = (doc + "; " if doc else "") + "one of: " + ", ".join(spec.choices)
        if spec.required:
            doc = (doc + " " if doc else "") + "(required)"
        if doc:
            lines.append(f"# {doc}")
        if spec.kind == "secret":
            lines.append(f'# {name} = "{_EXAMPLES.get(name, "env:CESSIO_SECRET")}"')
        elif spec.default is not None and spec.default != []:
            lines.append(f"{name} = {_toml_value(spec, spec.default)}")
        elif spec.default == []:
            lines.append(f"{name} = []")
        else:
            lines.append(f"# {name} = ")


def render_example() -> str:
    """The fully commented example configuration (``config.example.toml`` and ``cessio init``)."""
    from connector.registry import load_adapters

    lines = [
        "# Cessio configuration. Every key is listed with its default; unknown keys are errors.",
        '# Secrets are never written here: use "env:NAME" or "file:/path" (a 0600 file).',
        "# Rates and amounts are strings so they stay exact decimals.",
        "",
    ]
    for name, section in SCHEMA.sub.items():
        if section.named is not None:
            continue
        lines.append(f"[{name}]")
        if name == "company":
            lines.append('name = "My Company SAS"')
            _render_keys(lines, section.keys, skip=("name",))
        else:
            _render_keys(lines, section.keys)
        lines.append("")
    lines.append("# Sources: one [sources.NAME] table per ERP or folder; `type` selects the adapter,")
    lines.append("# whose own keys follow. Built-in types: " + ", ".join(sorted(load_adapters())) + ".")
    for type_name, cls in sorted(load_adapters().items()):
        lines.append(f"# [sources.my_{type_name.replace('-', '_')}]")
        lines.append(f'# type = "{type_name}"')
        sub: list[str] = []
        _render_keys(sub, getattr(cls, "config_keys", {}))
        lines.extend("# " + line for line in sub)
        lines.append("")
    lines.append("# Factors: one [factors.NAME] table per factoring contract.")
    lines.append("[factors.sandbox]")
    _render_keys(lines, FACTOR_KEYS)
    lines.append("")
    return "\n".join(lines)
