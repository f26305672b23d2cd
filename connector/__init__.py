"""Cessio: an e-factoring connector.

Pulls sales invoices from ERPs and e-invoice files, decides which may be assigned to a factor,
assigns them exactly once, and reconciles bank and factor statements against open items.
"""

__version__ = "0.1.0"
