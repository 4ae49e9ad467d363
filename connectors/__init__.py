"""Partner connectors: each partner's native format -> canonical Signalements on its ingress topic."""
