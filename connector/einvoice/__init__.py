"""E-invoice reading: detection by content, the declarative mapping compiler, normalisation into the
canonical model, native validation, the official EN 16931 rules through saxonche, and findings.

The per-syntax readers live in ``adapters/`` (ubl, cii, zugferd1, facturx_pdf); the library entry points
are in :mod:`connector.ingest` (``inspect_file``, ``ingest_paths``, ``process_inbox``).
"""
