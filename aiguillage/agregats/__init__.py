"""Aggregation arithmetic, pure: period keys, what a dossier contributes, confidentiality, the bilan."""
