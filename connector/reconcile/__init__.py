"""Reconciliation: statements imported once, matched to open items with evidence, posted to the ledger.

Modules: ``importing`` (files into the store, duplicate protection, balance chaining), ``matching`` (the
pure rule cascade), ``engine`` (store → matching → store), ``review`` (accept, reject, allocate by hand),
``export`` (the reconciliation log), ``ledger`` (journal entries, FEC, ERP write-back), ``factor_account``
(the factor current account and its balance-gap journal), ``generator`` (realistic data with ground truth).
"""
