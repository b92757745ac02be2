"""A service's answer made into data, or into an error message that says what to fix.

A success is decoded JSON (an empty body is an empty object). Anything else is a :class:`RemoteError`
worded for a script's author: ``HTTP <status>``, then the service's own error code and message (found by
an ``error_detail`` hook), then advice where the cause is likely on our side: a redirect, an HTML page or
other text instead of JSON (a wrong base URL), 401 and 403 (the token), 429 with its retries used up.
Whatever a server wrote is quoted safely: secrets removed, on one line, control characters escaped, short.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .. import _json
from .._errors import RemoteError
from .._http import redact
from .._registry import Account

QUOTED = 300  # at most this many characters of a server's text are quoted in a message

ErrorDetail = Callable[[Any, requests.Response], "tuple[str | None, str | None] | None"]
"""``error_detail(body, response) -> (code, message)``: the service's error code (an enum such as
``NOT_FOUND``, or ``None``) and its message (or ``None``) in a failed answer whose JSON is ``body``.
Returning ``None`` (or neither) quotes the whole body instead."""

RATE_LIMITED = "rate limited: the retries this run allows are used up, wait before calling again"


def decode_json(content: bytes) -> Any:
    """An answer's JSON: luabridge's decoder (orjson, several times faster than the standard one) and,
    for what it refuses but the standard parser reads (NaN, integers past 64 bits), the standard one.
    Raises :class:`ValueError` for a body that is not JSON."""
    try:
        return _json.loads(content)
    except _json.JSONError:
        return json.loads(content)


def message_or_error(body: Any, response: requests.Response) -> tuple[str | None, str | None] | None:
    """The default :data:`ErrorDetail`: the text under ``message`` or ``error`` of a JSON object."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return None, body[key]
    return None


def quote_text(text: str, *secrets: str | None, limit: int = QUOTED) -> str:
    """A server's ``text`` made safe to repeat: ``secrets`` removed, one line, no control characters, at
    most ``limit`` characters."""
    text = " ".join(redact(text, *secrets).split())
    # An escape sequence from a hostile server must not reach the terminal that prints the error.
    text = "".join(f"\\x{ord(char):02x}" if unicodedata.category(char) == "Cc" else char for char in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class AnswerReader:
    """Decodes the answers of one account's service and words its failures.

    ``token_setting`` names where the account's token is set (``SERVICE_TOKEN``), for the advice on 401
    and 403; ``secrets`` are scrubbed from whatever a server's answer quotes.
    """

    account: Account
    error_detail: ErrorDetail = message_or_error
    token_setting: str | None = None
    secrets: tuple[str | None, ...] = field(default=(), repr=False)

    def decode(self, response: requests.Response, advice: Mapping[int, str] | None = None) -> Any:
        """The JSON of a successful answer, or raise :class:`RemoteError`; ``advice`` maps a status to a
        sentence added to its error (it replaces the default advice for that status)."""
        status = response.status_code
        if 300 <= status < 400:
            raise RemoteError(self._redirected(response), status=status)
        if status >= 400:
            raise self._failed(response, advice or {})
        if not response.content.strip():
            return {}
        try:
            return decode_json(response.content)
        except ValueError as exc:
            raise RemoteError(self._not_json(response), status=status) from exc

    def _failed(self, response: requests.Response, advice: Mapping[int, str]) -> RemoteError:
        status, code = response.status_code, None
        try:
            body = decode_json(response.content) if response.content.strip() else None
        except ValueError:
            text = self._not_json(response)
        else:
            code, detail = self._detail(body, response)
            text = f"HTTP {status}{detail}"
        hint = {**self._default_advice(), **advice}.get(status)
        return RemoteError(f"{text}; {hint}" if hint else text, status=status, code=code)

    def _detail(self, body: Any, response: requests.Response) -> tuple[str | None, str]:
        """The service's error code, and what follows ``HTTP <status>``: `` CODE: message``, ``: <other
        JSON>`` or the reason phrase."""
        if body is None:
            return None, f" {self._quote(response.reason)}" if response.reason else ""
        code, message = self.error_detail(body, response) or (None, None)
        if not code and not message:
            return None, f": {self._quote(json.dumps(body, ensure_ascii=False))}"
        code = self._quote(code) if code else None
        return code, (f" {code}" if code else "") + (f": {self._quote(message)}" if message else "")

    def _default_advice(self) -> dict[int, str]:
        where = f" ({self.token_setting})" if self.token_setting else ""
        check = f"check the token of account '{self.account.alias}'{where}"
        return {401: check, 403: check, 429: RATE_LIMITED}

    def _redirected(self, response: requests.Response) -> str:
        location = response.headers.get("Location", "")
        try:
            target = urlsplit(location).hostname
        except ValueError:
            target = None
        where = self._quote(target) if target else "another address on the same host"
        return (f"HTTP {response.status_code}: the request was redirected to {where}; redirects are not "
                f"followed so the token is not sent elsewhere; check the URL of account "
                f"'{self.account.alias}' ({self.account.url})")

    def _not_json(self, response: requests.Response) -> str:
        """Word a body that is not JSON (an HTML page, or text): the URL is most likely wrong."""
        head = response.content[: QUOTED * 4].decode("utf-8", "replace").strip()
        if "html" in response.headers.get("Content-Type", "").lower() or head.startswith("<"):
            kind = "an HTML page"
        else:
            kind = f'the text "{self._quote(head)}"'
        return (f"HTTP {response.status_code} with {kind}, not JSON; the URL of account "
                f"'{self.account.alias}' ({self.account.url}) is probably wrong")

    def _quote(self, text: str) -> str:
        return quote_text(text, *self.secrets)
