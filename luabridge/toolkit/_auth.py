"""How a service client puts an account's token on a request: one small strategy per scheme.

An auth strategy is any callable ``auth(account) -> headers``; the headers it returns carry the
credential, and :func:`luabridge._http.send` scrubs their values from every message like the token
itself. An account without a token sends no auth headers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

from .._errors import IntegrationError
from .._registry import Account

Auth = Callable[[Account], Mapping[str, str]]

_TOKEN = "{token}"


class BearerAuth:
    """``Authorization: Bearer <token>``, the default."""

    def __call__(self, account: Account) -> dict[str, str]:
        token = _token(account)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def __repr__(self) -> str:
        return "BearerAuth()"


class HeaderAuth:
    """The token in header ``name``, spelled by ``template`` (``{token}`` is replaced by it).

    ``HeaderAuth("X-Api-Key")`` sends ``X-Api-Key: <token>``; ``HeaderAuth("Authorization", "token
    {token}")`` sends ``Authorization: token <token>``. Raises :class:`IntegrationError` for an empty
    header name or a template without ``{token}``.
    """

    def __init__(self, name: str, template: str = _TOKEN) -> None:
        if not name or not isinstance(name, str):
            raise IntegrationError(f"HeaderAuth needs a header name, got {name!r}")
        if _TOKEN not in template:
            raise IntegrationError(f"HeaderAuth's template must contain {_TOKEN}, got {template!r}")
        self.name = name
        self.template = template

    def __call__(self, account: Account) -> dict[str, str]:
        token = _token(account)
        return {self.name: self.template.replace(_TOKEN, token)} if token else {}

    def __repr__(self) -> str:
        return f"HeaderAuth({self.name!r}, {self.template!r})"


class BasicAuth:
    """``Authorization: Basic base64(<username>:<password>)``, each spelled by a template.

    The defaults send the token as the user name with an empty password; ``BasicAuth(password=
    "{token}", username="api")`` sends it as the password. Raises :class:`IntegrationError` when
    neither template contains ``{token}``.
    """

    def __init__(self, username: str = _TOKEN, password: str = "") -> None:
        if _TOKEN not in username and _TOKEN not in password:
            raise IntegrationError(f"BasicAuth needs {_TOKEN} in its username or password")
        self.username = username
        self.password = password

    def __call__(self, account: Account) -> dict[str, str]:
        token = _token(account)
        if not token:
            return {}
        pair = f"{self.username.replace(_TOKEN, token)}:{self.password.replace(_TOKEN, token)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")}

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={self.password!r})"


def _token(account: Account) -> str | None:
    return account.token.reveal() if account.token is not None else None
