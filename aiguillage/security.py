"""Kafka client security (SASL PLAIN/SCRAM, TLS), from Settings, for every client of the hub.

One mapping, two shapes: keyword arguments for aiokafka (producers, consumers,
admin) and credentials for Faust. With ``AIGUILLAGE_SECURITY_PROTOCOL`` unset
(PLAINTEXT) both are empty and nothing changes.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from aiguillage.config import MissingSecret, Settings, get_settings

SSL_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context (system CAs unless AIGUILLAGE_SSL_CAFILE), or None without TLS."""
    if settings.security_protocol not in SSL_PROTOCOLS:
        return None
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise MissingSecret(f"AIGUILLAGE_{name.upper()} names no readable file: {path}")
    password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    return create_ssl_context(
        cafile=settings.ssl_cafile,
        certfile=settings.ssl_certfile,
        keyfile=settings.ssl_keyfile,
        password=password,
    )


def _sasl(settings: Settings) -> tuple[str, str]:
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    if not settings.sasl_username or not password:
        raise MissingSecret(
            f"AIGUILLAGE_SECURITY_PROTOCOL={settings.security_protocol} needs "
            "AIGUILLAGE_SASL_USERNAME and AIGUILLAGE_SASL_PASSWORD"
        )
    return settings.sasl_username, password


def kafka_client_kwargs(settings: Settings | None = None) -> dict[str, Any]:
    """What to add to an aiokafka client's arguments; {} in PLAINTEXT."""
    s = settings or get_settings()
    if s.security_protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": s.security_protocol}
    context = ssl_context(s)
    if context is not None:
        kwargs["ssl_context"] = context
    if s.security_protocol in SASL_PROTOCOLS:
        username, password = _sasl(s)
        kwargs.update(
            sasl_mechanism=s.sasl_mechanism, sasl_plain_username=username, sasl_plain_password=password
        )
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for faust.App: None, SSLCredentials or SASLCredentials."""
    import faust  # only the worker needs Faust; keep it out of the gateway's imports

    if settings.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(context)
    username, password = _sasl(settings)
    # Faust picks SASL_SSL when given a context, SASL_PLAINTEXT otherwise.
    return faust.SASLCredentials(
        username=username, password=password, ssl_context=context, mechanism=settings.sasl_mechanism
    )
