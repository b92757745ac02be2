"""An account's base URL from what a user wrote: https, a host, the service's API path, nothing else."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from .._errors import ConfigError

# One DNS label; a bare account name is one too.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A JWT's header: base64 of '{"...' (always "eyJ"), then the dot before its claims.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BRACKETS = "the URL's host is malformed: brackets must hold an IPv6 address, such as [::1]"


def normalize_https_url(text: str, *, path: str = "", bare_host: Callable[[str], str] | None = None) -> str:
    """Return the base URL ``<scheme>://<host>[:<port>]<path>`` for what a user wrote.

    ``text`` may be a host (``api.example.com``), or a URL with or without ``path`` (``/v2``) and a
    trailing ``/``; ``bare_host``, when given, turns a single label such as ``acme`` into a host
    (``acme.example.com``). Raises :class:`ConfigError` for an empty or malformed URL, a scheme other than
    https (http only for loopback hosts), user info, a query, a fragment or another path, and for a URL
    holding a token (a JWT) anywhere; no message quotes a token.
    """
    text = text.strip()
    if not text:
        raise ConfigError("the URL is empty")
    if _CONTROL.search(text):
        # urlsplit would silently drop a tab or line break inside the URL and accept what is left.
        raise ConfigError("the URL contains a control character (a line break or tab inside it?)")
    if "://" not in text:
        if text.startswith("eyJ") and text.count(".") == 2:  # base64 of '{"': the start of every JWT
            raise ConfigError("this is a token (a JWT), not a URL; were the URL and token settings swapped?")
        if bare_host is not None and _LABEL.fullmatch(text.lower()):
            text = bare_host(text.lower())
        text = f"https://{text}"
    if _JWT.search(text):
        # Checked first, since the messages below quote the scheme, host or path they refuse.
        raise ConfigError("the URL contains a token (a JWT); put the token in the account's token setting")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # an unbalanced bracket, or brackets around something else than an address
        raise ConfigError(_BRACKETS) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"unsupported URL scheme {parts.scheme!r}; use https://")
    if "@" in parts.netloc:
        # Not echoed: whatever precedes '@' may be a password or a token.
        raise ConfigError(
            "the URL must not contain a user name or password; put the token in the account's token setting"
        )
    if "?" in text:
        raise ConfigError("the URL must not contain a query ('?...')")
    if "#" in text:
        raise ConfigError("the URL must not contain a fragment ('#...')")
    host = _host(parts.hostname, bracketed="[" in parts.netloc)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError("the URL has an invalid port") from exc
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"plain http:// is allowed only for loopback hosts (localhost, 127.0.0.1, ::1), not {host}; "
            "use https:// so the token is not sent unencrypted"
        )
    given = parts.path.rstrip("/")
    if given not in ("", path):
        where = f"optionally followed by {path}" if path else "without a path"
        raise ConfigError(f"unexpected path {given!r}; give the account's host, {where}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{path}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, without brackets) is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(hostname: str | None, *, bracketed: bool) -> str:
    """Check a host name or IP address (only an IPv6 address in brackets); the text is not echoed."""
    if not hostname:
        raise ConfigError("the URL has no host")
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    if bracketed and (address is None or address.version != 6):
        raise ConfigError(_BRACKETS)
    if address is not None:
        return str(address)
    labels = hostname.rstrip(".").split(".")
    if len(hostname) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(
            "the URL's host is not a valid host name (letters, digits and '-', in dot-separated labels "
            "of at most 63 characters)"
        )
    return ".".join(labels)
