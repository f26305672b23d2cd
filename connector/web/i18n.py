"""UI texts in English and French, and locale-aware formatting of amounts and dates (Babel, CLDR data).

Texts are keyed by their English wording; ``FRENCH`` must hold every key the templates use (a test reads
the templates and checks). Amounts are formatted from exact minor units with exactly the currency's ISO 4217
digits (JPY 0, EUR 2, TND 3); never through a float.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime

from connector.money import minor_unit_exponent

LANGUAGES = {"en": "en_GB", "fr": "fr_FR"}

FRENCH: dict[str, str] = {
    "Cessio review desk": "Cessio, bureau de revue",
    "Sign in": "Connexion", "Sign out": "Déconnexion", "User name": "Identifiant", "Password": "Mot de passe",
    "Wrong user name or password.": "Identifiant ou mot de passe incorrect.",
    "Queue": "File", "Reconciliation queue": "File de rapprochement", "Log": "Journal",
    "Reconciliation log": "Journal de rapprochement", "Assignments": "Cessions", "Quarantine": "Quarantaine",
    "Dashboard": "Tableau de bord", "Audit": "Audit", "Audit log": "Journal d'audit",
    "lines waiting for a decision": "lignes en attente de décision",
    "Nothing waiting: every statement line is decided.": "Rien en attente : chaque ligne de relevé est traitée.",
    "Booked": "Comptabilisé", "Account": "Compte", "Amount": "Montant", "Counterparty": "Contrepartie",
    "Remittance": "Libellé", "Reference": "Référence", "Candidates": "Candidats", "Invoice": "Facture",
    "Debtor": "Débiteur", "Due": "Échéance", "Open amount": "Reste dû", "Rule": "Règle",
    "Confidence": "Confiance", "Evidence": "Indices", "Difference": "Écart", "Booked as": "Comptabilisé en",
    "Accept": "Accepter", "Reject": "Rejeter", "Split": "Répartir", "Proposal": "Proposition",
    "invoices": "factures", "partial": "partiel", "Day": "Jour", "Cessio": "Cessio",
    "Factor's statement": "Relevé du factor", "Gap": "Écart",
    "Settled in the ERP after assignment": "Réglées dans l'ERP après cession", "In the ERP": "Dans l'ERP",
    "Assigned": "Cédé", "What to tell the factor": "À signaler au factor", "Recorded": "Enregistré",
    "in the audit log": "au journal d'audit", "at the next assignment run": "à la prochaine cession",
    "No assigned invoice was paid or cancelled in the ERP.": "Aucune facture cédée n'a été réglée ou annulée "
                                                              "dans l'ERP.",
    "ask the factor to cancel the assignment (or notify a credit note)":
        "demander au factor d'annuler la cession (ou notifier un avoir)",
    "report the collection to the factor (the debtor paid the company, as agreed)":
        "déclarer l'encaissement au factor (le débiteur a payé l'entreprise, comme convenu)",
    "indirect payment: the debtor paid the company, not the factor; pass the money on and report it":
        "paiement indirect : le débiteur a payé l'entreprise, pas le factor ; reverser les fonds et le déclarer",
    "Manual allocation": "Répartition manuelle", "Allocate": "Répartir", "Remaining": "Reste à répartir",
    "Add a row": "Ajouter une ligne", "Invoice number": "Numéro de facture",
    "No candidate invoice.": "Aucune facture candidate.", "Status": "Statut", "Decided by": "Décidé par",
    "Previous": "Précédent", "Next": "Suivant", "Page": "Page", "of": "sur",
    "Filter": "Filtrer", "From": "Du", "To": "Au", "Minimum": "Minimum", "Maximum": "Maximum", "any": "tous",
    "Export CSV": "Exporter en CSV", "Totals": "Totaux", "allocations": "affectations", "Write-off": "Passé en perte",
    "Line": "Ligne", "Decided": "Décidé", "Factor": "Factor", "Eligibility": "Éligibilité",
    "eligible": "éligible", "not eligible": "non éligible", "not decided": "non décidé",
    "Reasons": "Motifs", "At the factor": "Chez le factor", "Financing state": "État du financement",
    "Limit use per debtor": "Utilisation des agréments par débiteur", "Limit": "Agrément", "Used": "Utilisé",
    "Use": "Utilisation", "Valid to": "Valide jusqu'au",
    "Factor accounts": "Comptes chez le factor", "Balance": "Solde", "Movements": "Mouvements",
    "Balance-gap journal": "Journal des écarts de solde", "No balance gap recorded.": "Aucun écart de solde.",
    "File": "Fichier", "Field": "Champ", "Reason": "Motif", "Seen": "Vu", "Last seen": "Vu le",
    "Re-try": "Réessayer", "open": "ouvert", "resolved": "résolu",
    "Nothing in quarantine.": "Rien en quarantaine.", "Source": "Source",
    "Time": "Heure", "User": "Utilisateur", "Event": "Événement", "Entity": "Objet", "Details": "Détails",
    "not built yet": "pas encore disponible",
    "This capability is not built yet in this version:": "Cette fonction n'existe pas encore dans cette version :",
    "Your role cannot change anything here.": "Votre rôle ne permet aucune modification ici.",
    "Role": "Rôle", "Language": "Langue", "Keyboard": "Clavier",
    "j/k: next/previous line · a: accept · r: reject · s: split":
        "j/k : ligne suivante/précédente · a : accepter · r : rejeter · s : répartir",
    "Done.": "Fait.", "Refused:": "Refusé :", "DSO (days)": "DSO (jours)", "Auto-match rate": "Taux de lettrage auto",
    "Open invoices": "Factures ouvertes", "Exceptions": "Exceptions", "Reserve held": "Retenue de garantie",
    "No data yet.": "Pas encore de données.", "Users": "Utilisateurs",
    "no suggestion, no allocation yet": "ni suggestion ni affectation pour l'instant",
    "computed": "calculé le", "Refresh": "Actualiser",
}


def translator(lang: str):
    table = FRENCH if lang == "fr" else {}

    def t(text: str) -> str:
        return table.get(text, text)

    return t


def pick_language(requested: str | None, accept_language: Any) -> str:
    """The user's explicit choice, else the browser's preference, else English."""
    if requested in LANGUAGES:
        return requested
    best = accept_language.best_match(list(LANGUAGES)) if accept_language else None
    return best or "en"


@functools.lru_cache(maxsize=8)
def _symbols(lang: str) -> tuple[str, str, str]:
    """CLDR group separator, decimal mark and minus sign of the language (fr: narrow no-break space, comma)."""
    symbols = Locale.parse(LANGUAGES.get(lang, "en_GB")).number_symbols
    symbols = symbols.get("latn", symbols)
    return symbols["group"], symbols["decimal"], symbols.get("minusSign", "-")


def _format(value: Decimal, places: int, lang: str) -> str:
    # Decimal's own formatting is exact (no float); only the separators come from the locale. A page shows
    # hundreds of amounts, and this is ~100 times cheaper than a full CLDR pattern per amount.
    group, decimal, minus = _symbols(lang)
    text = f"{value:,.{places}f}"
    return text.replace(",", "\0").replace(".", decimal).replace("\0", group).replace("-", minus)


@functools.lru_cache(maxsize=256)
def currency_exponent(currency: str) -> int:
    """ISO 4217 digits of a currency, cached (the lookup normalises the code through pycountry each time)."""
    return minor_unit_exponent(currency)


def amount(minor: int | None, currency: str | None, lang: str) -> str:
    """``1 234,50`` / ``1,234.50`` from minor units, with the currency's own number of digits."""
    if minor is None or not currency:
        return ""
    exponent = currency_exponent(currency)
    return _format(Decimal(int(minor)).scaleb(-exponent), exponent, lang)


def decimal_text(value: Any, lang: str) -> str:
    """A decimal string of the report (exact) in the user's locale, digits kept as given."""
    if value in (None, ""):
        return "–"
    text = str(value)
    return _format(Decimal(text), len(text.split(".")[1]) if "." in text else 0, lang)


def date_text(value: str | None, lang: str) -> str:
    if not value:
        return ""
    try:
        if "T" in value:
            return format_datetime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")), "short",
                                   locale=LANGUAGES.get(lang, "en_GB"))
        return format_date(dt.date.fromisoformat(value[:10]), "medium", locale=LANGUAGES.get(lang, "en_GB"))
    except ValueError:
        return value
