"""Configuration validation: precise errors naming the key; secrets only by reference."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from connector.config import load_config, parse_config, render_example
from connector.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[2]

GOOD = """
[store]
path = "data/cessio.db"

[company]
name = "Cessio Demo SAS"
legal_id = "732829320"

[factors.main]
channel = "api"
base_url = "https://factor.example/v1"
token = "env:CESSIO_TEST_TOKEN"
advance_rate = "0.85"
currencies = ["EUR", "USD"]
"""


def test_good_file_passes(tmp_path):
    config = parse_config(GOOD, path=tmp_path / "cessio.toml")
    assert config.store_path == tmp_path / "data" / "cessio.db"
    factor = config.factors["main"]
    assert factor["advance_rate"] == Decimal("0.85")
    assert factor["reserve_rate"] == Decimal("0.10")  # default
    assert "CESSIO" not in repr(factor["token"])  # the reference never prints its target


def test_example_file_is_the_rendered_schema_and_valid(tmp_path):
    example = (PROJECT / "config.example.toml").read_text(encoding="utf-8")
    assert example == render_example(), "regenerate with: cessio init > config.example.toml"
    parse_config(example, path=tmp_path / "cessio.toml")


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"factors\.main\.advance_rat: unknown key"):
        parse_config(GOOD.replace("advance_rate", "advance_rat"), path=tmp_path / "c.toml")


def test_unknown_section_is_named():
    with pytest.raises(ConfigError, match=r"stor: unknown key"):
        parse_config('[stor]\npath = "x"\n')


def test_bad_type_is_named():
    with pytest.raises(ConfigError, match=r"company\.default_payment_days: expected an integer"):
        parse_config('[company]\nname = "x"\ndefault_payment_days = "thirty"\n')


def test_float_rate_refused():
    with pytest.raises(ConfigError, match=r"factors\.main\.advance_rate: write decimals as strings"):
        parse_config(GOOD.replace('"0.85"', "0.85"))


def test_bad_choice_is_named():
    with pytest.raises(ConfigError, match=r"factors\.main\.mode: expected one of"):
        parse_config(GOOD + 'mode = "secret-ish"\n')


def test_secret_in_clear_refused():
    with pytest.raises(ConfigError, match=r"factors\.main\.token: secret written in clear"):
        parse_config(GOOD.replace("env:CESSIO_TEST_TOKEN", "s3cr3t-t0ken"))


def test_world_readable_secret_file_refused(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("abc123")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match=r"factors\.main\.token: secret file .* readable by others"):
        parse_config(GOOD.replace("env:CESSIO_TEST_TOKEN", f"file:{secret}"))
    secret.chmod(0o600)
    config = parse_config(GOOD.replace("env:CESSIO_TEST_TOKEN", f"file:{secret}"))
    assert config.factors["main"]["token"].reveal() == "abc123"


def test_env_secret_resolves_only_when_used(monkeypatch):
    config = parse_config(GOOD)
    monkeypatch.delenv("CESSIO_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="CESSIO_TEST_TOKEN is not set"):
        config.factors["main"]["token"].reveal()
    monkeypatch.setenv("CESSIO_TEST_TOKEN", "tok-value")
    assert config.factors["main"]["token"].reveal() == "tok-value"


def test_missing_required_key():
    with pytest.raises(ConfigError, match=r"company\.name: required key is missing"):
        parse_config('[company]\ncountry = "FR"\n')


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[store\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(path)


def test_unknown_source_type_is_named():
    with pytest.raises(ConfigError, match=r"sources\.erp.*unknown adapter type 'sap-r2'"):
        parse_config('[sources.erp]\ntype = "sap-r2"\n')


def test_cli_init_writes_a_valid_file(tmp_path):
    from click.testing import CliRunner

    from connector.cli import cli

    out = tmp_path / "cessio.toml"
    result = CliRunner().invoke(cli, ["init", "-o", str(out)])
    assert result.exit_code == 0, result.output
    load_config(out)
    again = CliRunner().invoke(cli, ["init", "-o", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    assert os.path.getsize(out) > 500
