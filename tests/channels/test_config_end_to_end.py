"""A file or ISO 20022 factor configured in cessio.toml works end to end through the CLI and the agent's
jobs: config → eligibility → bordereau (or tsin.006) released to the outbox with its control totals →
the factor's replies read from ``replies_dir`` → financing states and factor ledgers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

from click.testing import CliRunner

from connector.agent.jobs import job_factor_events
from connector.channels import iso20022
from connector.channels.bordereau import file_totals
from connector.channels.fixedwidth import load_layout
from connector.cli import cli
from connector.clock import today
from connector.config import parse_config
from connector.store import Store
from tests.channels.sample import DOMESTIC, EXPORT, FIXTURES
from tests.factories import make_invoice

ISSUE = today() - dt.timedelta(days=3)


def invoices():
    due = ISSUE + dt.timedelta(days=45)
    return [
        make_invoice("F2026-0001", "1200.00", buyer=DOMESTIC, issue=ISSUE, due=due),
        make_invoice("F2026-0002", "349.99", buyer=DOMESTIC, issue=ISSUE, due=due + dt.timedelta(days=10)),
        make_invoice("F2026-0003", "5000.00", buyer=EXPORT, issue=ISSUE, due=due),
        make_invoice("AV2026-0001", "100.00", kind="credit_note", buyer=DOMESTIC, issue=ISSUE, due=due,
                     preceding_invoices=("F2026-0001",)),
        # not eligible: overdue; it must not reach the file
        make_invoice("F2026-0009", "77.00", buyer=DOMESTIC, issue=ISSUE - dt.timedelta(days=40),
                     due=today() - dt.timedelta(days=1)),
    ]


def write_config(folder: Path, channel: str, **extra: str) -> Path:
    lines = [f'channel = "{channel}"', 'client_number = "123456"', f'outbox_dir = "{folder / "outbox"}"',
             f'replies_dir = "{folder / "replies"}"', "require_limit = false", 'concentration_limit = "1"',
             *(f"{k} = {v}" for k, v in extra.items())]
    path = folder / "cessio.toml"
    path.write_text(f"""[store]
path = "{folder / 'cessio.db'}"

[company]
name = "Cessio Demo SAS"
legal_id = "73282932000074"
legal_id_scheme = "0009"

[factors.bpce]
{chr(10).join(lines)}
""", encoding="utf-8")
    with Store(folder / "cessio.db", actor="test") as store, store.transaction():
        for invoice in invoices():
            store.save_invoice(dataclasses.replace(invoice, seller=dataclasses.replace(invoice.seller,
                                                                                        country="FR")))
    return path


def states(folder: Path) -> dict[str, str]:
    with Store(folder / "cessio.db", actor="test") as store:
        return {r["number"]: r["financing_state"] for r in store._all("SELECT number, financing_state FROM invoices")}


def run_events(config_path: Path) -> dict:
    config = parse_config(config_path.read_text(encoding="utf-8"), path=config_path)
    with Store(config.store_path, actor="agent") as store:
        return job_factor_events("bpce")(store, config)


def test_configured_bordereau_factor_through_cessio_assign(tmp_path):
    config = write_config(tmp_path, "file", layout='"bpce"', reply_layout='"generic_statement"')
    runner = CliRunner()
    checked = runner.invoke(cli, ["--config", str(config), "check"])
    assert "factor bpce: file channel: outbox" in checked.output, checked.output

    result = runner.invoke(cli, ["--config", str(config), "assign"])
    assert result.exit_code == 0, result.output
    assert "F2026-0009" in result.output and "OVERDUE" in result.output
    assert "claimed 3 invoice(s), 1 credit note(s)" in result.output

    released = sorted(p for p in (tmp_path / "outbox").iterdir() if p.is_file())
    assert [p.name for p in released] == [f"BPCE_123456_0001_{today():%Y%m%d}.txt"]
    content = released[0].read_bytes()
    lines = content.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) == 275 for line in lines[:-1])
    assert [line[:2] for line in lines[:-1]] == [b"01", b"02", b"02", b"02", b"02", b"09"]
    # the control totals read back from the released file: invoices as issued, the credit note apart
    totals = file_totals(load_layout("bpce"), content)
    assert (totals["count_invoice"], totals["sum_invoice"]) == (3, 120000 + 34999 + 500000)
    assert (totals["count_credit_note"], totals["sum_credit_note"]) == (1, 10000)
    assert totals["total_signed_minor"] == 120000 + 34999 + 500000 - 10000
    assert b"CESSIO DEMO SAS" in lines[0] and b"F2026-0009" not in content
    assert (tmp_path / "outbox" / "html" / f"{released[0].stem}.html").is_file()
    with Store(tmp_path / "cessio.db", actor="test") as store:
        (batch,) = store._all("SELECT * FROM batches WHERE factor = 'bpce'")
        assert (batch["item_count"], batch["control_sum_minor"]) == (4, totals["total_signed_minor"])
        assert {r["state"] for r in store.assignment_rows("bpce")} == {"sent"}
    assert states(tmp_path)["F2026-0001"] == "sent"

    # a second run sends nothing more and never a second file
    again = runner.invoke(cli, ["--config", str(config), "assign"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir() if p.is_file()) == [released[0].name]

    # the factor's reply: acknowledgement, funding, fee, reserve for F2026-0001; F2026-0003 refused
    replies = tmp_path / "replies"
    replies.mkdir()
    (replies / ".incoming.csv.part").write_text("still being copied")
    day = today().isoformat()
    (replies / "releve.csv").write_text(
        "Numero;Date;Mouvement;Document;Debiteur;Montant;TVA;Devise;Motif\n"
        f"M-1;{day};ACK;F2026-0001;C0042;1200.00;;EUR;\n"
        f"M-2;{day};APP;F2026-0001;C0042;1200.00;;EUR;\n"
        f"M-3;{day};FIN;F2026-0001;C0042;1080.00;;EUR;\n"
        f"M-4;{day};COM;F2026-0001;C0042;3.00;0.60;EUR;\n"
        f"M-5;{day};REF;F2026-0003;C0099;5000.00;;EUR;BE08 limit\n", encoding="utf-8")
    counts = run_events(config)
    assert counts["events"] == {"files": 1, "events": 5, "new": 5, "quarantined": 0}
    assert (replies / "imported" / "releve.csv").is_file() and (replies / ".incoming.csv.part").is_file()
    after = states(tmp_path)
    assert (after["F2026-0001"], after["F2026-0002"], after["F2026-0003"]) == ("funded", "sent", "declined")
    with Store(tmp_path / "cessio.db", actor="test") as store:
        ledger = store.factor_ledger_totals("bpce")
        assert ledger[("funded", "EUR")] == 108000 and ledger[("fees", "EUR")] == 300
        assert ledger[("fees_vat", "EUR")] == 60
        assert store.verify_audit().ok
    assert run_events(config)["events"]["files"] == 0  # moved aside: not read twice
    status = runner.invoke(cli, ["--config", str(config), "status"])
    assert status.exit_code == 0 and "bpce" in status.output


def test_configured_iso20022_factor_through_cessio_assign(tmp_path):
    config = write_config(tmp_path, "iso20022")
    result = CliRunner().invoke(cli, ["--config", str(config), "assign"])
    assert result.exit_code == 0, result.output
    (written,) = [p for p in (tmp_path / "outbox").iterdir() if p.is_file()]
    assert written.name == "tsin006_bpce_000001.xml"
    data = written.read_bytes()
    assert iso20022.validation_problems(data, "tsin.006.001.01") == []
    assert b"<CdtDbtInd>CRDT</CdtDbtInd>" in data and b"F2026-0009" not in data

    (tmp_path / "replies").mkdir()
    shutil.copy(FIXTURES / "tsin007_status.xml", tmp_path / "replies" / "status.xml")
    counts = run_events(config)["events"]
    assert counts["files"] == 1 and counts["new"] > 0 and counts["quarantined"] == 0
    after = states(tmp_path)
    assert after["F2026-0001"] in ("accepted", "funded") and after["F2026-0003"] == "declined"


def test_a_misconfigured_file_factor_is_one_clear_config_error(tmp_path):
    config = write_config(tmp_path, "file")  # no layout
    result = CliRunner().invoke(cli, ["--config", str(config), "assign"])
    assert result.exit_code == 2 and "layout" in result.output
    assert not (tmp_path / "outbox").exists()


def test_statements_import_routes_factor_replies_by_content(tmp_path):
    config = write_config(tmp_path, "file", layout='"bpce"', reply_layout='"generic_statement"')
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "assign"]).exit_code == 0
    tsin = tmp_path / "status.xml"
    shutil.copy(FIXTURES / "tsin007_status.xml", tsin)
    csv_reply = tmp_path / "releve.csv"
    csv_reply.write_text("Numero;Date;Mouvement;Document;Debiteur;Montant;TVA;Devise;Motif\n"
                         f"M-9;{today().isoformat()};FIN;F2026-0002;C0042;314.99;;EUR;\n", encoding="utf-8")
    result = runner.invoke(cli, ["--config", str(config), "statements", "import", str(tsin), str(csv_reply)])
    assert result.exit_code == 0, result.output
    assert f"{tsin}: factor bpce reply:" in result.output and f"{csv_reply}: factor bpce reply: 1 events, 1 new" \
        in result.output
    assert states(tmp_path)["F2026-0002"] == "funded"
    again = runner.invoke(cli, ["--config", str(config), "statements", "import", str(csv_reply)])
    assert "0 new, 1 already known" in again.output
    # a bank statement still goes to the bank statement importer
    bank = runner.invoke(cli, ["--config", str(config), "statements", "import",
                               str(FIXTURES / "camt053_factor_account.xml")])
    assert "factor bpce reply" not in bank.output


def test_changes_after_sending_and_expiring_limits_are_reported(tmp_path):
    config = write_config(tmp_path, "file", layout='"bpce"')
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "assign"]).exit_code == 0
    with Store(tmp_path / "cessio.db", actor="test") as store, store.transaction():
        changed = dataclasses.replace(invoices()[1], total_gross=invoices()[1].total_gross + invoices()[1].total_gross,
                                      amount_due=invoices()[1].amount_due + invoices()[1].amount_due)
        store.save_invoice(dataclasses.replace(changed, seller=dataclasses.replace(changed.seller, country="FR")))
        store.save_debtor_limit("bpce", DOMESTIC.key, "approved", 5_000_000, "EUR", today().isoformat(),
                                (today() + dt.timedelta(days=10)).isoformat())
    again = runner.invoke(cli, ["--config", str(config), "assign"])
    assert again.exit_code == 0, again.output
    assert "CHANGED AFTER SENT" in again.output and "F2026-0002 (v1 sent, now v2)" in again.output
    assert len([p for p in (tmp_path / "outbox").iterdir() if p.is_file()]) == 1  # nothing resent
    status = runner.invoke(cli, ["--config", str(config), "status"])
    assert "F2026-0002: sent as version 1, now version 2" in status.output
    assert f"{DOMESTIC.key}: 50000.00 EUR approved until" in status.output and "10 days left" in status.output
