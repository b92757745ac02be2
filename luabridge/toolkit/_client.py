"""An HTTP client for one account of one service, on luabridge's HTTP policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from .._errors import IntegrationError
from .._http import new_session, send
from .._registry import Account, CallContext
from ._answers import AnswerReader, ErrorDetail, message_or_error
from ._auth import Auth, BearerAuth


class ServiceClient:
    """Calls one account's service: ``get``, ``post`` (and ``put``, ``patch``, ``delete``) take a path
    under the account's URL and the call's :class:`CallContext`, and return the decoded JSON.

    Every request goes through :func:`luabridge._http.send`: the run's deadline and body cap, its retry
    policy (reads retried, writes only where they provably never arrived), no redirects, no cookies,
    nothing from the environment, the token scrubbed from every message. ``auth(account)`` returns the
    headers that carry the token (:class:`BearerAuth` by default); ``headers`` are sent with every request;
    ``error_detail`` finds the service's error code and message in a failed answer (see
    :mod:`luabridge.toolkit`). The advice on 401 and 403 names where the account's token was set
    (``account.token_setting``: an environment variable or the accounts file), when it was. ``sleep``
    and ``clock`` are handed to ``send``, so tests can run retries without waiting. Raises
    :class:`IntegrationError` when ``auth`` or ``error_detail`` is not callable.
    """

    def __init__(
        self,
        account: Account,
        *,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        error_detail: ErrorDetail = message_or_error,
        session: requests.Session | None = None,
        max_attempts: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("auth", auth), ("error_detail", error_detail)):
            if value is not None and not callable(value):
                raise IntegrationError(f"ServiceClient's {name} must be callable, got {type(value).__name__}")
        self.account = account
        self.session = session if session is not None else new_session()
        self._auth = dict((auth or BearerAuth())(account))
        self._headers = dict(headers or {})
        self._options = {"max_attempts": max_attempts, "connect_timeout": connect_timeout,
                         "read_timeout": read_timeout, "sleep": sleep, "clock": clock}
        token = account.token.reveal() if account.token is not None else None
        self._reader = AnswerReader(
            account, error_detail=error_detail,
            token_setting=account.token_setting,
            secrets=(token, *self._auth.values()),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.account.alias!r}, url={self.account.url!r})"

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def get(self, path: str, ctx: CallContext, *, params: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """``GET <url><path>?<params>``; ``options`` as for :meth:`request`."""
        return self.request("GET", path, ctx, params=params, **options)

    def post(self, path: str, ctx: CallContext, *, json: Any = None, **options: Any) -> Any:
        """``POST <url><path>`` with ``json`` as the body; ``options`` as for :meth:`request`."""
        return self.request("POST", path, ctx, json=json, **options)

    def put(self, path: str, ctx: CallContext, *, json: Any = None, **options: Any) -> Any:
        """``PUT <url><path>`` with ``json`` as the body; ``options`` as for :meth:`request`."""
        return self.request("PUT", path, ctx, json=json, **options)

    def patch(self, path: str, ctx: CallContext, *, json: Any = None, **options: Any) -> Any:
        """``PATCH <url><path>`` with ``json`` as the body; ``options`` as for :meth:`request`."""
        return self.request("PATCH", path, ctx, json=json, **options)

    def delete(self, path: str, ctx: CallContext, **options: Any) -> Any:
        """``DELETE <url><path>``; ``options`` as for :meth:`request`."""
        return self.request("DELETE", path, ctx, **options)

    def request(
        self,
        method: str,
        path: str,
        ctx: CallContext,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        advice: Mapping[int, str] | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """Send one request to ``<account url><path>`` and return its decoded JSON.

        ``path`` starts with ``/``; build its variable parts with :func:`path_segment`. ``advice`` maps an
        HTTP status to a sentence added to its error message; ``max_attempts`` overrides the client's.
        Raises :class:`RemoteError` for a failed answer or transport, :class:`LimitExceeded` when the
        call passes one of the run's limits, and :class:`IntegrationError` for a path without a leading
        ``/`` or a call for another account.
        """
        if not path.startswith("/"):
            raise IntegrationError(f"a request path must start with '/', got {path[:80]!r}")
        if ctx.account != self.account:
            # send() takes the token from ctx; it must be the token of the account this URL belongs to.
            raise IntegrationError(
                f"a call for account {ctx.account.alias!r} reached the client of account "
                f"{self.account.alias!r}; connect() must make one client per account"
            )
        options = dict(self._options)
        if max_attempts is not None:
            options["max_attempts"] = max_attempts
        response = send(
            self.session, method, self.account.url + path, ctx=ctx, params=params, json=json,
            auth=self._auth, headers=self._headers, **options,
        )
        return self._reader.decode(response, advice)
