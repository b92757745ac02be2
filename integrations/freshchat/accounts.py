"""How Freshchat accounts are configured: the environment prefix, the default URL and URL normalisation.

A Freshchat account is reached at ``https://<account>.freshchat.com/v2`` (or a regional host such as
``api.eu.freshchat.com``). Users copy that address in many shapes, so :func:`normalize_url` accepts a bare
account name, a host, or a full URL with or without ``/v2``, and returns one canonical base URL.
"""

from __future__ import annotations

from luabridge import AccountScheme
from luabridge.toolkit import normalize_https_url

API_PATH = "/v2"


def normalize_url(text: str) -> str:
    """Return the API base URL for what a user wrote, always ending in ``/v2``.

    ``acme`` -> ``https://acme.freshchat.com/v2``; ``api.eu.freshchat.com`` ->
    ``https://api.eu.freshchat.com/v2``; ``https://acme.freshchat.com/v2/`` ->
    ``https://acme.freshchat.com/v2``. Raises :class:`~luabridge.ConfigError` for an empty or malformed
    URL, a scheme other than https (http only for loopback hosts), user info, a query, a fragment or
    another path, and for a URL holding a token (a JWT) anywhere; no message quotes a token (see
    :func:`luabridge.toolkit.normalize_https_url`).
    """
    return normalize_https_url(text, path=API_PATH, bare_host=lambda account: f"{account}.freshchat.com")


SCHEME = AccountScheme(
    env_prefix="FRESHCHAT",
    default_url="https://api.freshchat.com/v2",
    normalize_url=normalize_url,
    token_aliases=("ACCESS_TOKEN",),
)
