"""HTTPS for ``lorakit serve``: the certificate and key checked before any base
loads, so a wrong file is one line, not a traceback after minutes of loading
(or, for a key with a passphrase, OpenSSL asking for it on the terminal)."""

from __future__ import annotations

import ssl
from pathlib import Path

from lorakit.errors import ConfigError

MAKE_ONE = ("for a test, make a self-signed pair: openssl req -x509 -newkey rsa:2048 -nodes -days 365 "
            "-subj /CN=localhost -keyout key.pem -out cert.pem")


class _Encrypted(Exception):
    """The key asked for a passphrase."""


def _no_passphrase() -> str:
    raise _Encrypted


def check_tls_files(cert: str | None, key: str | None) -> None:
    """Refuse what uvicorn could not serve HTTPS with: a key without a
    certificate, a missing or unreadable file, a file that is not PEM, a key
    with a passphrase, a key that does not belong to the certificate."""
    if cert is None:
        if key is not None:
            raise ConfigError("--tls-key needs --tls-cert: give the certificate (PEM) the key belongs to")
        return
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: no such file; {MAKE_ONE}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _Encrypted:
        named = key or cert
        raise ConfigError(f"{named}: the private key has a passphrase, which a server cannot type; write it "
                          f"without one (openssl pkey -in {named} -out plain-key.pem) and pass that "
                          "as --tls-key") from None
    except PermissionError:
        raise ConfigError(f"cannot read {cert} or {key}: permission denied") from None
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if "KEY_VALUES_MISMATCH" in reason:
            raise ConfigError(f"--tls-key {key} is not the key of --tls-cert {cert}: pass the key the certificate "
                              "was made with") from None
        text = Path(cert).read_text(errors="replace")
        if "PRIVATE KEY-----" in text and "CERTIFICATE-----" not in text:
            raise ConfigError(f"--tls-cert {cert} is a private key, not a certificate: are --tls-cert and "
                              "--tls-key the wrong way round?") from None
        if key is None and "PRIVATE KEY-----" not in text:
            raise ConfigError(f"--tls-cert {cert} holds no private key: pass the certificate's key with "
                              "--tls-key KEY.pem") from None
        where = f"--tls-cert {cert}" + (f" or --tls-key {key}" if key else "")
        raise ConfigError(f"{where} is not a PEM certificate and private key (OpenSSL: {reason}); "
                          f"{MAKE_ONE}") from None
