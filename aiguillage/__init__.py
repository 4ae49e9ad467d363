"""Aiguillage: the referral-routing hub of the service social de l'Assurance Maladie."""

__version__ = "0.1.0"
