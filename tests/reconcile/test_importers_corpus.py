"""Every file of ../shared/corpus/payments: parsed without a crash, the right statements, lines and amounts,
malformed files refused with a clear error, and a second import creates nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from adapters.statements import read_statement_with_info
from connector.errors import Quarantine
from connector.reconcile.importing import import_files

pytestmark = pytest.mark.corpus

# file → (statements, lines, not booked) for every readable file; a string is the start of the refusal reason
EXPECTED: dict[str, tuple[int, int, int] | str] = {
    "genkgo-camt/camt052.v1.xml": (1, 1, 0),
    "genkgo-camt/camt052.v2.other-account.xml": (1, 1, 0),
    "genkgo-camt/camt052.v2.with-account-name.xml": (1, 1, 0),
    "genkgo-camt/camt052.v2.xml": (1, 1, 0),
    "genkgo-camt/camt052.v4.xml": (1, 0, 1),  # a pending entry: not a movement yet
    "genkgo-camt/camt052.v6.Amt-zero.xml": (1, 0, 1),
    "genkgo-camt/camt052.v6.xml": (1, 0, 1),
    "genkgo-camt/camt052.v8.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.all-balance-types.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.five.decimals.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.minimal.ultimate.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.minimal.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.multi.statement.xml": (2, 2, 0),
    "genkgo-camt/camt053.v2.with-account-name.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.with-party-ids.xml": (1, 1, 0),
    "genkgo-camt/camt053.v2.wrong.xml": "camt.053.001.02 holds no Stmt",
    "genkgo-camt/camt053.v3.xml": (1, 1, 0),
    "genkgo-camt/camt053.v4.xml": (1, 1, 0),
    "genkgo-camt/camt053.v8.xml": (1, 1, 0),
    "genkgo-camt/camt054.v2.with-account-name.xml": (1, 1, 0),
    "genkgo-camt/camt054.v2.xml": (1, 1, 0),
    "genkgo-camt/camt054.v4.xml": (1, 1, 0),
    "genkgo-camt/camt054.v8-with-UETR.xml": (1, 1, 0),
    "genkgo-camt/camt054.v8-with-financial-institution.xml": (1, 1, 0),
    "genkgo-camt/camt054.v8.xml": (1, 1, 0),
    "genkgo-camt/camt53.only-Dt-with-DtTm.xml": (1, 0, 0),
    "pennylane-cfonb/example.txt": (2, 6, 0),
    "pennylane-cfonb/end_of_statement_without_beginning.txt": "new balance (07) without an old balance (01)",
    "pennylane-cfonb/invalid_date.txt": "old balance date",
    "pennylane-cfonb/new_statement_without_previous_ended.txt": "a new statement (01) starts before",
    "pennylane-cfonb/operation.txt": "operation (04) outside a statement",
    "pennylane-cfonb/operation_already_defined.txt": "operation (04) outside a statement",
    "pennylane-cfonb/operation_detail_without_operation.txt": "complement (05) without its operation",
    "pennylane-cfonb/operation_out_of_statement.txt": "operation (04) outside a statement",
    "pennylane-cfonb/operation_unstarted.txt": "complement (05) without its operation",
    "wolph-mt940/ASNB/mt940.txt": (31, 8, 0),
    "wolph-mt940/ASNB/mt940_with_spaces_for_entry_date.txt": (31, 8, 0),
    "wolph-mt940/betterplace/amount_formats.sta": "unsupported document: MT940 fragment",
    "wolph-mt940/betterplace/currency_in_25.sta": "unsupported document",
    "wolph-mt940/betterplace/empty_86.sta": "unsupported document",
    "wolph-mt940/betterplace/empty_entry_date.sta": "unsupported document: MT940 fragment",
    "wolph-mt940/betterplace/empty_line.sta": "unsupported document",  # a lone :20: line
    "wolph-mt940/betterplace/missing_crlf_at_end.sta": "unsupported document",
    "wolph-mt940/betterplace/sepa_mt9401.sta": (26, 97, 0),
    "wolph-mt940/betterplace/sepa_snippet.sta": (2, 11, 0),
    "wolph-mt940/betterplace/sepa_snippet_broken.sta": (1, 1, 0),
    "wolph-mt940/betterplace/with_binary_character.sta": (2, 4, 0),
    "wolph-mt940/citi/mt940.txt": (1, 3, 2),  # two zero-amount BAI information lines
    "wolph-mt940/cmxl/account_balance_credit.sta": "unsupported document",
    "wolph-mt940/cmxl/account_balance_debit.sta": "unsupported document",
    "wolph-mt940/cmxl/account_identification_iban.sta": "unsupported document",
    "wolph-mt940/cmxl/account_identification_legacy.sta": "unsupported document",
    "wolph-mt940/cmxl/available_balance.sta": "unsupported document",
    "wolph-mt940/cmxl/closing_balance.sta": "unsupported document",
    "wolph-mt940/cmxl/mt940.sta": "amount '84349,74': currency 'DEM'",  # Deutsche Mark: not ISO 4217 any more
    "wolph-mt940/cmxl/reference.sta": "unsupported document",  # a lone :20: line
    "wolph-mt940/cmxl/statement_details.sta": "unsupported document: MT940 fragment",
    "wolph-mt940/cmxl/statement_line.sta": "unsupported document: MT940 fragment",
    "wolph-mt940/cmxl/statement_number.sta": "unsupported document",
    "wolph-mt940/jejik/abnamro.sta": (2, 10, 0),
    "wolph-mt940/jejik/generic.sta": (2, 2, 0),
    "wolph-mt940/jejik/ing.sta": (1, 7, 0),
    "wolph-mt940/jejik/knab.sta": (2, 3, 0),
    "wolph-mt940/jejik/postfinance.sta": (2, 4, 0),
    "wolph-mt940/jejik/rabobank-iban.sta": (2, 4, 0),
    "wolph-mt940/jejik/rabobank.sta": (4, 5, 0),
    "wolph-mt940/jejik/sns.sta": (2, 2, 0),
    "wolph-mt940/jejik/triodos.sta": (1, 2, 0),
    "wolph-mt940/mBank/mt940.sta": (1, 3, 0),
    "wolph-mt940/mBank/mt942.sta": (1, 3, 0),
    "wolph-mt940/mBank/with_newline_in_tnr.sta": (1, 2, 0),
    "wolph-mt940/sberbank/171011_01234945.sta": (1, 3, 0),
    "wolph-mt940/self-provided/account_identification.sta": "no currency",
    "wolph-mt940/self-provided/details_60-63.sta": (1, 1, 0),
    "wolph-mt940/self-provided/empty_non_swift.sta": "unsupported document",
    "wolph-mt940/self-provided/february_30.sta": (1, 1, 0),
    "wolph-mt940/self-provided/gv_codes.sta": (1, 2, 0),
    "wolph-mt940/self-provided/invalid_statement.sta": "unsupported document",
    "wolph-mt940/self-provided/long_statement_number.sta": (1, 0, 0),
    "wolph-mt940/self-provided/malformed_details.sta": (1, 1, 0),
    "wolph-mt940/self-provided/mt942.sta": (1, 1, 0),
    "wolph-mt940/self-provided/multiline.sta": (1, 2, 0),
    "wolph-mt940/self-provided/overly_long_details.sta": (1, 1, 0),
    "wolph-mt940/self-provided/raiffeisen-cmi.sta": (1, 7, 0),
    "wolph-mt940/self-provided/raphaelm.sta": "currency 'DEM'",
    "wolph-mt940/self-provided/sparkassen.sta": "unsupported document: MT940 fragment",
    "wolph-mt940/self-provided/transaction_details_wrapped.sta": (1, 1, 0),
    "wolph-mt940/self-provided/whitespace.sta": (1, 1, 0),
    "wolph-mt940/self-provided/wrapped_timestamp.sta": (1, 1, 0),
}


def corpus_files(root: Path) -> list[Path]:
    base = root / "payments"
    return sorted(p for p in base.rglob("*") if p.is_file() and "LICENSE" not in p.name
                  and p.suffix not in (".md", ".json"))


def test_every_corpus_file_is_listed(corpus):
    found = {str(p.relative_to(corpus / "payments")) for p in corpus_files(corpus)}
    assert found == set(EXPECTED), f"unlisted: {found - set(EXPECTED)}, missing: {set(EXPECTED) - found}"
    assert len(found) == 89  # MANIFEST: 26 camt + 54 MT940/942 + 9 CFONB


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(corpus, name):
    path = corpus / "payments" / name
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(Quarantine) as refused:
            read_statement_with_info(path.read_bytes(), name)
        assert expected in str(refused.value)
        assert str(refused.value).startswith(name)  # the error names the file
        return
    statements, info = read_statement_with_info(path.read_bytes(), name)
    assert (len(statements), sum(len(s.lines) for s in statements), info.not_booked) == expected
    for statement in statements:
        assert statement.account and statement.content_hash
        for line in statement.lines:
            assert line.amount.currency and not line.amount.is_zero()
            assert line.account == statement.account


def lines_of(corpus, name):
    statements, _ = read_statement_with_info((corpus / "payments" / name).read_bytes(), name)
    return statements, [line for s in statements for line in s.lines]


def test_camt053_v8_fields(corpus):
    statements, (line,) = lines_of(corpus, "genkgo-camt/camt053.v8.xml")
    assert str(line.amount) == "8.85 EUR" and line.bank_reference == "AAAASESS-FP-CN_98765/01"
    assert line.structured_reference == "4654654654654654" and line.end_to_end_id == "MUELL/FINP/RA12345"
    assert statements[0].opening_balance.amount == Decimal("18.15")


def test_camt_five_decimals_and_multi_statement(corpus):
    statements, _ = lines_of(corpus, "genkgo-camt/camt053.v2.five.decimals.xml")
    assert statements[0].opening_balance.amount == Decimal("18.15")  # "18.150" is exact in cents
    assert statements[0].closing_balance.amount == Decimal("27.05")
    statements, _ = lines_of(corpus, "genkgo-camt/camt053.v2.multi.statement.xml")
    assert len({s.statement_id for s in statements}) == 2


def test_camt054_batch_keeps_every_reference(corpus):
    _, (line,) = lines_of(corpus, "genkgo-camt/camt054.v4.xml")
    # the three TxDtls amounts (CHF) do not make the entry amount (SEK): one line, every reference kept
    assert line.structured_reference == "ISR ref number V1"
    assert "UXC06170000006PI00001EE00002" in line.references
    assert "Unstructured Remittance Information V1" in line.remittance


def test_camt054_uetr(corpus):
    _, (line,) = lines_of(corpus, "genkgo-camt/camt054.v8-with-UETR.xml")
    assert line.uetr == "255ae394-9965-4438-ac86-f406feada396"


def test_mt940_german_sepa_details_and_balances(corpus):
    statements, lines = lines_of(corpus, "wolph-mt940/betterplace/sepa_snippet.sta")
    first = lines[0]
    assert str(first.amount) == "50990.05 EUR" and first.bank_reference == "0724710333343453"
    assert first.counterparty_name == "KARL KAUFMANN" and first.counterparty_iban == "DE14508800500194785000"
    assert first.end_to_end_id.startswith("EndToEndId TFNR 22 004")
    statements, lines = lines_of(corpus, "wolph-mt940/betterplace/sepa_mt9401.sta")
    for statement in statements:  # every one of the 26 statements adds up
        total = sum((line.amount.amount for line in statement.lines), Decimal(0))
        assert statement.opening_balance.amount + total == statement.closing_balance.amount


def test_mt940_dutch_details_and_reversal(corpus):
    _, lines = lines_of(corpus, "wolph-mt940/jejik/rabobank-iban.sta")
    assert lines[0].counterparty_name == "CONTRA ACCOUNT HOLDER"
    assert lines[0].end_to_end_id == "01-01-2013 12:00 0030000987654321"
    _, lines = lines_of(corpus, "wolph-mt940/self-provided/february_30.sta")
    assert lines[0].booking_date.isoformat() == "2016-03-01" and lines[0].value_date.isoformat() == "2016-02-29"


def test_cfonb_amounts_names_and_balances(corpus):
    statements, lines = lines_of(corpus, "pennylane-cfonb/example.txt")
    assert [str(line.amount) for line in lines] == ["-32.21 EUR", "-10.70 EUR", "-7.90 EUR", "97.49 EUR",
                                                    "-12.10 EUR", "-7.90 EUR"]
    assert lines[0].counterparty_name == "INTERNET SFR" and lines[0].end_to_end_id == "REFERENCE"
    for statement in statements:
        total = sum((line.amount.amount for line in statement.lines), Decimal(0))
        assert statement.opening_balance.amount + total == statement.closing_balance.amount


def test_whole_corpus_imported_twice_creates_nothing(corpus, store):
    files = corpus_files(corpus)
    first = import_files(store, files)
    lines = store.count_statement_lines()
    refused = [r for r in first if r.error]
    assert len(refused) == sum(isinstance(v, str) for v in EXPECTED.values())
    assert all(r.file in r.error for r in refused)  # each refusal names its file
    assert len(store.quarantined()) == len(refused)
    second = import_files(store, files)
    assert store.count_statement_lines() == lines
    assert sum(r.new for r in second) == 0
    assert store.verify_audit().ok


def test_camt_amounts_agree_with_the_genkgo_parsers_own_expected_output(corpus):
    """Cross-check with genkgo/camt's expected parse dumps (a second parser's view, not a spec): every booked
    entry it reports is one of our lines with the same reference, signed amount and currency; its pending
    entries are the ones we count as not booked."""
    import json
    from collections import Counter

    folder = corpus / "payments" / "genkgo-camt"
    dumps = sorted((folder / "expected-genkgo-json").glob("*.json"))
    assert len(dumps) == 25
    for dump in dumps:
        entries = json.loads(dump.read_text()).get("getEntries") or []
        theirs = Counter((e.get("getAccountServicerReference"), int(e["getAmount"]["getAmount"]),
                          e["getAmount"]["getCurrency"]["getCode"]) for e in entries if e.get("getStatus") == "BOOK")
        statements, info = read_statement_with_info((folder / f"{dump.stem}.xml").read_bytes(), dump.name)
        ours = Counter((line.bank_reference, line.amount.minor_units, line.amount.currency)
                       for s in statements for line in s.lines)
        assert not theirs - ours, dump.name
        assert info.not_booked == sum(e.get("getStatus") != "BOOK" for e in entries), dump.name
