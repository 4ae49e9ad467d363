"""The demo: simulated partners and caseworkers whose traffic follows the seeds' figures."""
