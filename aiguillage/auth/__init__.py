"""Staff access: OpenID Connect bearer tokens -> a Personne with rights (droits.py), checked
against the identity provider's JWKS (oidc.py); a development issuer for `aiguillage up`
(dev_issuer.py); the audit trail of every read of personal rows and every change (audit.py)."""
