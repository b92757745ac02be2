"""The public toolkit for writing an integration: everything a client needs, and nothing private.

    from luabridge.toolkit import BearerAuth, ServiceClient, path_segment

    class ItemsClient:
        def __init__(self, account):
            self.http = ServiceClient(account, auth=BearerAuth(), scheme=SCHEME)

        def get_item(self, args, ctx):
            item = path_segment(args["id"], "parameter 'id'")
            return self.http.get(f"/items/{item}", ctx)

- :class:`ServiceClient` calls one account's service with luabridge's HTTP policy (the run's deadline
  and body cap, safe retries, no redirects, no cookies, the token scrubbed from every message) and
  returns decoded JSON, or raises a :class:`~luabridge.RemoteError` that says what to fix.
- Auth strategies say where the token goes: :class:`BearerAuth` (the default), :class:`HeaderAuth`
  (a header of your own, a template of your own), :class:`BasicAuth`, or any callable
  ``auth(account) -> headers``.
- ``error_detail(body, response) -> (code, message)`` is the hook that finds the service's own error code
  and message in a failed answer's JSON; :func:`message_or_error` is the default.
- :func:`path_segment` turns a script's value into one safe path segment, or refuses it before
  anything is sent; :func:`normalize_https_url` turns what a user wrote into an account's base URL;
  :func:`redact` and :func:`quote_text` keep secrets and hostile text out of messages.

Errors a client raises carry what went wrong, not which function: the bridge adds
``<integration>.<function>: `` and the account once, for every integration.
"""

from __future__ import annotations

from .._http import redact
from ._answers import ErrorDetail, message_or_error, quote_text
from ._auth import Auth, BasicAuth, BearerAuth, HeaderAuth
from ._client import ServiceClient
from ._paths import MAX_SEGMENT_LENGTH, path_segment, segment_problem
from ._urls import is_loopback, normalize_https_url

__all__ = [
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "ErrorDetail",
    "HeaderAuth",
    "MAX_SEGMENT_LENGTH",
    "ServiceClient",
    "is_loopback",
    "message_or_error",
    "normalize_https_url",
    "path_segment",
    "quote_text",
    "redact",
    "segment_problem",
]
