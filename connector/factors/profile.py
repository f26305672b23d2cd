"""Factor profiles: the ``[factors.NAME]`` config section read into one typed, immutable object.

Reads the validated config dict (keys declared in ``connector/config.py`` FACTOR_KEYS); writes nothing.
Money thresholds are Decimals here and become :class:`~connector.money.Money` where a currency is known.
"""

from __future__ import annotations

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


def profile_from_config(name: str, section: dict[str, Any]) -> FactorProfile:
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
    return FactorProfile(name=name, **simple)


def profiles(config: Any, only: str | None = None) -> list[FactorProfile]:
    """Every configured factor's profile (or only ``only``); a missing name is a config error."""
    factors = config.factors if config is not None else {}
    if only is not None and only not in factors:
        raise ConfigError(f"no factor named {only!r} in the config", key=f"factors.{only}")
    return [profile_from_config(n, dict(s)) for n, s in factors.items() if only in (None, n)]
