"""The embedded mode of `aiguillage up`: what makes its memory-only broker keep the promises of a 202."""
