"""How Freshchat accounts are configured: the environment prefix, the default URL and URL normalisation.

A Freshchat account is reached at ``https://<account>.freshchat.com/v2`` (or a regional host such as
``api.eu.freshchat.com``). Users copy that address in many shapes, so :func:`normalize_url` accepts a bare
account name, a host, or a full URL with or without ``/v2``, and returns one canonical base URL.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from luabridge import AccountScheme, ConfigError

API_PATH = "/v2"
# One DNS label; a bare account name is one too.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A JWT's header: base64 of '{"...' (always "eyJ"), then the dot before its claims.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BRACKETS = "the URL's host is malformed: brackets must hold an IPv6 address, such as [::1]"


def normalize_url(text: str) -> str:
    """Return the API base URL for what a user wrote, always ending in ``/v2``.

    ``acme`` -> ``https://acme.freshchat.com/v2``; ``api.eu.freshchat.com`` ->
    ``https://api.eu.freshchat.com/v2``; ``https://acme.freshchat.com/v2/`` ->
    ``https://acme.freshchat.com/v2``. Raises :class:`ConfigError` for an empty or malformed URL, a scheme
    other than https (http only for loopback hosts), user info, a query, a fragment or another path, and
    for a URL holding a token (a JWT) anywhere; no message quotes a token.
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
        if _LABEL.fullmatch(text.lower()):
            return f"https://{text.lower()}.freshchat.com{API_PATH}"
        text = f"https://{text}"
    if _JWT.search(text):
        # Checked first, since the messages below quote the scheme, host or path they refuse.
        raise ConfigError("the URL contains a token (a JWT); put the token in the account's token setting")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # an unbalanced bracket, or brackets around something else than an address
        raise ConfigError(_BRACKETS) from exc
    if parts.scheme.lower() not in ("http", "https"):
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
    if parts.scheme.lower() == "http" and not _is_loopback(host):
        raise ConfigError(
            f"plain http:// is allowed only for loopback hosts (localhost, 127.0.0.1, ::1), not {host}; "
            "use https:// so the token is not sent unencrypted"
        )
    path = parts.path.rstrip("/")
    if path not in ("", API_PATH):
        raise ConfigError(
            f"unexpected path {path!r}; give the account's host, optionally followed by {API_PATH}"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{API_PATH}"


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SCHEME = AccountScheme(
    env_prefix="FRESHCHAT",
    default_url="https://api.freshchat.com/v2",
    normalize_url=normalize_url,
    token_aliases=("ACCESS_TOKEN",),
)
