"""Factor profiles: the ``[factors.NAME]`` config section read into one typed, immutable object.

Reads the validated config dict (keys declared in ``connector/config.py`` FACTOR_KEYS); writes nothing.
Money thresholds are Decimals here and become :class:`~connector.money.Money` where a currency is known.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.codes import normalise_country
from connector.errors import ConfigError

# Country-risk classes (1 best .. 7 worst), after the OECD "country risk classification" idea; high-income
# OECD members are class 0 there, mapped to 1 here. A config list "CC=N" overrides any entry; a country
# missing from both is treated as the worst class (7) so an unknown risk is never accepted by default.
DEFAULT_COUNTRY_RISK: dict[str, int] = {
    **{cc: 1 for cc in ("AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "LU", "NL", "NO",
                        "PT", "SE", "US", "CA", "JP", "AU", "NZ", "IS", "EE", "LV", "LT", "SI", "SK", "CZ")},
    **{cc: 2 for cc in ("PL", "HU", "HR", "MT", "CY", "GR", "KR", "SG", "IL", "CL")},
    **{cc: 3 for cc in ("RO", "BG", "MX", "CN", "MA", "PE", "TH", "MY")},
    **{cc: 4 for cc in ("IN", "TN", "ZA", "BR", "CO", "ID", "PH", "VN", "TR")},
    **{cc: 5 for cc in ("EG", "KE", "NG", "DZ")},
    **{cc: 7 for cc in ("RU", "BY", "IR", "KP", "VE", "SY")},
}


@dataclass(frozen=True)
class FactorProfile:
    name: str
    channel: str = "api"
    mode: str = "notified"
    base_url: str | None = None
    token: Any = None            # SecretRef
    client_id: str | None = None
    client_secret: Any = None    # SecretRef
    token_url: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 120.0
    client_number: str | None = None
    currencies: tuple[str, ...] = ("EUR",)
    countries: tuple[str, ...] = ()
    max_country_risk: int = 4
    country_risk: dict[str, int] = field(default_factory=dict)
    advance_rate: Decimal = Decimal("0.90")
    reserve_rate: Decimal = Decimal("0.10")
    fee_rate: Decimal = Decimal("0.0025")
    fee_vat_rate: Decimal = Decimal("0.20")
    interest_rate: Decimal = Decimal("0.045")
    cutoff_times: tuple[str, ...] = ("16:00",)
    max_tenor_days: int = 120
    max_age_days: int = 90
    min_amount: Decimal = Decimal("0")
    concentration_limit: Decimal = Decimal("0.25")
    concentration_floor: Decimal = Decimal("50000")
    grace_days: int = 60
    require_limit: bool = True
    request_limits: bool = True
    default_limit_request: Decimal = Decimal("100000")
    intra_group: tuple[str, ...] = ()
    batch_size: int = 50
    lease_seconds: int = 180
    max_retry_after: float = 900.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    # file and iso20022 channels (connector/channels/): where files go, in which layout, where replies land
    layout: str | None = None
    outbox_dir: str | None = None
    replies_dir: str | None = None
    reply_layout: str | None = None
    layout_params: dict[str, Any] = field(default_factory=dict)
    sftp_url: str | None = None
    sftp_host_key: str | None = None
    sftp_password: Any = None    # SecretRef
    sftp_key: str | None = None

    def risk_class(self, country: str | None) -> int:
        if not country:
            return 7
        return self.country_risk.get(country, DEFAULT_COUNTRY_RISK.get(country, 7))


def _risk_table(entries: list[str], name: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for entry in entries:
        code, _, klass = entry.partition("=")
        try:
            table[normalise_country(code.strip())] = int(klass)
        except (ValueError, TypeError, LookupError) as exc:
            raise ConfigError(f'country_risk entry {entry!r} is not "CC=N"',
                              key=f"factors.{name}.country_risk") from exc
    return table


def profile_from_config(name: str, section: dict[str, Any], company: dict[str, Any] | None = None) -> FactorProfile:
    """Build the profile of factor ``name`` from its validated ``[factors.NAME]`` table."""
    simple = {k: v for k, v in section.items() if v is not None and k in FactorProfile.__dataclass_fields__}
    for key in ("connect_timeout", "read_timeout", "deadline", "max_retry_after", "breaker_cooldown"):
        if key in simple:
            simple[key] = float(simple[key])  # durations in seconds, never amounts
    for key in ("currencies", "countries", "cutoff_times", "intra_group"):
        if key in simple:
            simple[key] = tuple(simple[key])
    if "countries" in simple:
        simple["countries"] = tuple(normalise_country(c) for c in simple["countries"])
    simple["country_risk"] = _risk_table(list(section.get("country_risk") or []), name)
    if "ca_bundle" in simple:
        simple["ca_bundle"] = str(simple["ca_bundle"])
    for key in ("outbox_dir", "replies_dir", "sftp_key"):
        if key in simple:
            simple[key] = str(simple[key])
    if "cutoff_times" in simple:
        simple["cutoff_times"] = tuple(sorted(_cutoff(t, name) for t in simple["cutoff_times"]))
    simple["layout_params"] = {**company_params(company or {}), **dict(section.get("layout_params") or {})}
    return FactorProfile(name=name, **simple)


def _cutoff(text: str, name: str) -> str:
    try:
        return dt.time.fromisoformat(text).strftime("%H:%M")
    except (TypeError, ValueError):
        raise ConfigError(f"cut-off time {text!r} is not HH:MM", key=f"factors.{name}.cutoff_times") from None


def company_params(company: dict[str, Any]) -> dict[str, Any]:
    """What the bordereau layouts take from ``[company]`` (the assignor): name, identifier and its type."""
    params: dict[str, Any] = {}
    if company.get("name"):
        params["company_name"] = company["name"]
        params["company_short"] = "".join(ch for ch in company["name"].upper() if ch.isalnum())[:10]
    if company.get("country"):
        params["company_country"] = company["country"]
    if company.get("legal_id"):
        legal = str(company["legal_id"]).replace(" ", "")
        if company.get("legal_id_scheme") == "0009" or len(legal) == 14:
            params["company_id"], params["company_id_type"] = legal, "1"  # SIRET
    if "company_id" not in params and company.get("vat_id"):
        params["company_id"], params["company_id_type"] = company["vat_id"], "2"  # VAT number
    return params


def after_last_cutoff(profile: FactorProfile, now: dt.time) -> str | None:
    """The factor's last cut-off of the day when ``now`` is past it: what is sent now is processed by the
    factor on its next business day (the agent waits; ``cessio assign`` says so)."""
    if not profile.cutoff_times:
        return None
    last = profile.cutoff_times[-1]
    return last if now >= dt.time.fromisoformat(last) else None


def profiles(config: Any, only: str | None = None) -> list[FactorProfile]:
    """Every configured factor's profile (or only ``only``); a missing name is a config error."""
    factors = config.factors if config is not None else {}
    if only is not None and only not in factors:
        raise ConfigError(f"no factor named {only!r} in the config", key=f"factors.{only}")
    company = config.section("company") if config is not None and hasattr(config, "section") else {}
    return [profile_from_config(n, dict(s), company) for n, s in factors.items() if only in (None, n)]
