"""The public integration toolkit, against a tiny fake service: the exact requests, auth, answers, errors."""

from __future__ import annotations

import base64
import time
from dataclasses import replace

import pytest
import responses
from responses import matchers

from luabridge import (
    Account,
    ArgumentError,
    CallContext,
    CallError,
    ConfigError,
    IntegrationError,
    RemoteError,
    Secret,
)
from luabridge.toolkit import (
    BasicAuth,
    BearerAuth,
    HeaderAuth,
    ServiceClient,
    normalize_https_url,
    path_segment,
    quote_text,
    redact,
)

TOKEN = "tk-71c2-SECRET"
BASE = "https://api.items.test/v1"
ACCOUNT = Account("items", "default", BASE, Secret(TOKEN))
WORK = Account("items", "work", "https://work.items.test/v1", Secret("work-SECRET"))
WRONG_URL = f"the URL of account 'default' ({BASE}) is probably wrong"


def context(account: Account = ACCOUNT) -> CallContext:
    return CallContext(account=account, deadline=time.monotonic() + 30)


def client(account: Account = ACCOUNT, **options) -> ServiceClient:
    return ServiceClient(account, sleep=lambda seconds: None, **options)


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def only_headers(request, expected: dict[str, str]) -> None:
    """The request carries exactly ``expected`` among the headers a client chooses."""
    chosen = {name: value for name, value in request.headers.items()
              if name not in ("User-Agent", "Accept-Encoding", "Connection", "Content-Length")}
    assert chosen == expected


def test_get_sends_the_path_query_accept_and_bearer_token_and_returns_the_json(mock):
    mock.get(BASE + "/items", json={"items": [1]}, match=[matchers.query_param_matcher({"page": "2"})])
    ctx = context()
    assert client().get("/items", ctx, params={"page": 2}) == {"items": [1]}
    only_headers(mock.calls[0].request, {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert ctx.http_status == 200


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_writes_send_their_json_body(mock, method):
    mock.add(method.upper(), BASE + "/items/i-1", json={"ok": True}, status=201,
             match=[matchers.json_params_matcher({"name": "x"})])
    assert getattr(client(), method)("/items/i-1", context(), json={"name": "x"}) == {"ok": True}
    only_headers(mock.calls[0].request, {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}",
                                         "Content-Type": "application/json"})


def test_delete_and_an_empty_success_body(mock):
    mock.delete(BASE + "/items/i-1", status=204, body=b"")
    assert client().delete("/items/i-1", context()) == {}
    only_headers(mock.calls[0].request, {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}"})


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.mark.parametrize(("auth", "sent"), [
    (BearerAuth(), {"Authorization": f"Bearer {TOKEN}"}),
    (HeaderAuth("X-Api-Key"), {"X-Api-Key": TOKEN}),
    (HeaderAuth("Authorization", "token {token}"), {"Authorization": f"token {TOKEN}"}),
    (BasicAuth(), {"Authorization": basic(f"{TOKEN}:")}),
    (BasicAuth(username="api", password="{token}"), {"Authorization": basic(f"api:{TOKEN}")}),
    (lambda account: {"X-Account": account.alias, "X-Key": account.token.reveal()},
     {"X-Account": "default", "X-Key": TOKEN}),
])
def test_each_auth_strategy_sends_exactly_its_headers(mock, auth, sent):
    mock.get(BASE + "/me", json={})
    client(auth=auth, headers={"X-Client": "toolkit-test"}).get("/me", context())
    only_headers(mock.calls[0].request, {"Accept": "application/json", "X-Client": "toolkit-test", **sent})


@pytest.mark.parametrize("auth", [BearerAuth(), HeaderAuth("X-Api-Key"), BasicAuth()])
def test_an_account_without_a_token_sends_no_auth(mock, auth):
    account = Account("items", "default", BASE)
    mock.get(BASE + "/public", json={})
    client(account, auth=auth).get("/public", context(account))
    only_headers(mock.calls[0].request, {"Accept": "application/json"})


def test_headers_the_client_adds_may_replace_accept_but_not_the_auth(mock):
    mock.get(BASE + "/raw", json={})
    client(auth=HeaderAuth("X-Api-Key"), headers={"Accept": "application/vnd.items+json", "X-Api-Key": "no"}
           ).get("/raw", context())
    only_headers(mock.calls[0].request, {"Accept": "application/vnd.items+json", "X-Api-Key": TOKEN})


def error_body(status: int, body: object) -> dict:
    return {"status": status, "json": body}


def coded(body, response):
    """A service whose errors are {"error": {"type": ..., "detail": ...}}."""
    inner = body.get("error") if isinstance(body, dict) else None
    return (inner.get("type"), inner.get("detail")) if isinstance(inner, dict) else None


ERRORS = [
    # name, answer, client options, request advice, message, code
    ("message", error_body(404, {"message": "no such item"}), {}, None, "HTTP 404: no such item", None),
    ("error-key", error_body(400, {"error": "bad_request"}), {}, None, "HTTP 400: bad_request", None),
    ("other-json", error_body(422, {"errors": ["name is taken"]}), {}, None,
     'HTTP 422: {"errors": ["name is taken"]}', None),
    ("hook", error_body(409, {"error": {"type": "CONFLICT", "detail": "exists"}}), {"error_detail": coded}, None,
     "HTTP 409 CONFLICT: exists", "CONFLICT"),
    ("hook-code-only", error_body(409, {"error": {"type": "CONFLICT"}}), {"error_detail": coded}, None,
     "HTTP 409 CONFLICT", "CONFLICT"),
    ("hook-finds-nothing", error_body(500, ["x"]), {"error_detail": coded}, None, 'HTTP 500: ["x"]', None),
    ("empty-body", {"status": 502, "body": b""}, {}, None, "HTTP 502 Bad Gateway", None),
    ("401", error_body(401, {"message": "bad token"}), {}, None,
     "HTTP 401: bad token; check the token of account 'default'", None),
    ("403-from-the-environment", error_body(403, {"message": "forbidden"}),
     {"account": replace(ACCOUNT, source="env", token_setting="ITEMS_TOKEN")}, None,
     "HTTP 403: forbidden; check the token of account 'default' (ITEMS_TOKEN)", None),
    ("429", {"status": 429, "body": b""}, {"max_attempts": 1}, None,
     "HTTP 429 Too Many Requests; rate limited: the retries this run allows are used up, wait before calling "
     "again", None),
    ("advice", error_body(404, {"message": "gone"}), {}, {404: "items older than a year are archived"},
     "HTTP 404: gone; items older than a year are archived", None),
    ("advice-replaces-default", error_body(401, {"message": "no"}), {}, {401: "this endpoint needs an admin token"},
     "HTTP 401: no; this endpoint needs an admin token", None),
    ("html", {"status": 404, "body": "<html>Not here</html>", "content_type": "text/html"}, {}, None,
     f"HTTP 404 with an HTML page, not JSON; {WRONG_URL}", None),
    ("html-auth", {"status": 401, "body": "<p>sign in</p>", "content_type": "text/plain"}, {}, None,
     f"HTTP 401 with an HTML page, not JSON; {WRONG_URL}; check the token of account 'default'", None),
    ("html-success", {"status": 200, "body": "<!DOCTYPE html>", "content_type": "text/html"}, {}, None,
     f"HTTP 200 with an HTML page, not JSON; {WRONG_URL}", None),
    ("text", {"status": 200, "body": "all\n good\x1b[2J", "content_type": "text/plain"}, {}, None,
     f'HTTP 200 with the text "all good\\x1b[2J", not JSON; {WRONG_URL}', None),
    ("redirect", {"status": 302, "headers": {"Location": "https://login.items.test/?next=/v1"}}, {}, None,
     "HTTP 302: the request was redirected to login.items.test; redirects are not followed so the token is "
     f"not sent elsewhere; check the URL of account 'default' ({BASE})", None),
    ("echoed-token", error_body(400, {"message": f"bad key {TOKEN}"}), {}, None, "HTTP 400: bad key ***", None),
    ("long", error_body(400, {"message": "y" * 500}), {}, None, "HTTP 400: " + "y" * 297 + "...", None),
]


@pytest.mark.parametrize(("name", "answer", "options", "advice", "message", "code"), ERRORS,
                         ids=[row[0] for row in ERRORS])
def test_a_failed_answer_is_worded_for_its_reader(mock, name, answer, options, advice, message, code):
    mock.get(BASE + "/items/i-1", **answer)
    with pytest.raises(RemoteError) as caught:
        client(**options).get("/items/i-1", context(), advice=advice)
    assert caught.value.message == str(caught.value) == message
    assert (caught.value.status, caught.value.code) == (answer["status"], code)
    assert (caught.value.function, caught.value.account) == (None, None)  # the bridge fills them in


@pytest.mark.parametrize("auth", [BasicAuth(), HeaderAuth("Authorization", "Key={token}")])
def test_every_spelling_of_the_credential_is_scrubbed_from_what_a_server_echoes(mock, auth):
    header = auth(ACCOUNT)["Authorization"]
    mock.get(BASE + "/me", status=400, json={"message": f"rejected {header}"})
    with pytest.raises(RemoteError) as caught:
        client(auth=auth).get("/me", context())
    assert TOKEN not in caught.value.message and header not in caught.value.message
    assert caught.value.message.startswith("HTTP 400: rejected ")


def test_a_call_for_another_account_is_refused_before_sending(mock):
    with pytest.raises(IntegrationError) as caught:
        client().get("/items", context(WORK))
    assert str(caught.value) == ("a call for account 'work' reached the client of account 'default'; "
                                 "connect() must make one client per account")
    assert len(mock.calls) == 0


def test_a_path_without_a_leading_slash_is_a_broken_integration(mock):
    with pytest.raises(IntegrationError, match="a request path must start with '/', got 'items'"):
        client().get("items", context())


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ServiceClient(ACCOUNT, auth="Bearer"), "ServiceClient's auth must be callable, got str"),
    (lambda: ServiceClient(ACCOUNT, error_detail={}), "ServiceClient's error_detail must be callable, got dict"),
    (lambda: HeaderAuth(""), "HeaderAuth needs a header name, got ''"),
    (lambda: HeaderAuth("X-Key", "static"), "HeaderAuth's template must contain {token}, got 'static'"),
    (lambda: BasicAuth(username="api", password="pw"), "BasicAuth needs {token} in its username or password"),
])
def test_a_misbuilt_client_says_what_is_wrong(build, message):
    with pytest.raises(IntegrationError) as caught:
        build()
    assert str(caught.value) == message


def test_no_repr_shows_the_token():
    built = client(auth=BasicAuth())
    assert repr(built) == f"ServiceClient(account='default', url='{BASE}')"
    texts = [repr(built), repr(built._reader), repr(BasicAuth()), repr(HeaderAuth("X-Key"))]
    assert [text for text in texts if TOKEN in text or base64.b64encode(TOKEN.encode()).decode() in text] == []


def test_the_session_sends_no_cookie_back_and_ignores_the_environment():
    assert client().session.trust_env is False


@pytest.mark.parametrize(("value", "segment"), [
    ("item-1", "item-1"), ("a b é", "a%20b%20%C3%A9"), ("x" * 256, "x" * 256), ("a+b=c", "a%2Bb%3Dc"),
])
def test_path_segment_encodes_a_value_as_one_segment(value, segment):
    assert path_segment(value, "parameter 'id'") == segment


@pytest.mark.parametrize(("value", "message"), [
    ("", "parameter 'id' must not be empty"),
    ("a/b", "parameter 'id' must not contain '/': an id is a single path segment (got \"a/b\")"),
    ("..", "parameter 'id' must not be '.' or contain '..' (got \"..\")"),
    ("%2F", "parameter 'id' must not contain percent-escapes such as %2F; pass the id itself (got \"%2F\")"),
    ("a\x1b", "parameter 'id' must not contain control characters (got \"a\\u001b\")"),
    ("x" * 257, "parameter 'id' must be at most 256 characters long (got 257)"),
])
def test_path_segment_refuses_what_cannot_be_one_segment(value, message):
    with pytest.raises(ArgumentError) as caught:
        path_segment(value, "parameter 'id'")
    assert caught.value.message == message
    assert caught.value.kind == "validation"


def test_path_segment_takes_its_own_length_limit():
    with pytest.raises(ArgumentError, match="must be at most 8 characters long"):
        path_segment("123456789", "the key", max_length=8)


def items_host(name: str) -> str:
    return f"{name}.items.test"


@pytest.mark.parametrize(("text", "url"), [
    ("api.items.test", "https://api.items.test/v1"),
    ("https://API.Items.test/v1/", "https://api.items.test/v1"),
    ("https://api.items.test", "https://api.items.test/v1"),
    ("acme", "https://acme.items.test/v1"),
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765/v1"),
    ("http://[::1]:80/v1", "http://[::1]:80/v1"),
    ("http://localhost/v1", "http://localhost/v1"),
])
def test_normalize_https_url(text, url):
    assert normalize_https_url(text, path="/v1", bare_host=items_host) == url


@pytest.mark.parametrize(("text", "message"), [
    ("", "the URL is empty"),
    ("http://api.items.test", "plain http:// is allowed only for loopback hosts (localhost, 127.0.0.1, ::1), not "
     "api.items.test; use https:// so the token is not sent unencrypted"),
    ("ftp://api.items.test", "unsupported URL scheme 'ftp'; use https://"),
    ("https://me:pw@api.items.test", "the URL must not contain a user name or password; put the token in the "
     "account's token setting"),
    ("https://api.items.test/v2", "unexpected path '/v2'; give the account's host, optionally followed by /v1"),
    ("https://api.items.test/v1?x=1", "the URL must not contain a query ('?...')"),
    ("https://api.items.test\n/v1", "the URL contains a control character (a line break or tab inside it?)"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig", "this is a token (a JWT), not a URL; were the URL and token "
     "settings swapped?"),
    ("https://[api]/v1", "the URL's host is malformed: brackets must hold an IPv6 address, such as [::1]"),
    ("https://api.items.test:99999", "the URL has an invalid port"),
])
def test_normalize_https_url_refuses(text, message):
    with pytest.raises(ConfigError) as caught:
        normalize_https_url(text, path="/v1", bare_host=items_host)
    assert str(caught.value) == message


def test_normalize_https_url_without_an_api_path_or_bare_names():
    assert normalize_https_url("api.items.test/") == "https://api.items.test"
    with pytest.raises(ConfigError, match="unexpected path '/v1'; give the account's host, without a path"):
        normalize_https_url("https://api.items.test/v1")
    with pytest.raises(ConfigError, match="not a valid host name"):
        normalize_https_url("-acme-")


def test_quote_text_and_redact():
    assert quote_text(f"a\n\tb {TOKEN}\x07", TOKEN) == "a b ***\\x07"
    assert quote_text("z" * 10, limit=8) == "zzzzz..."
    assert redact(f"Bearer {TOKEN}", TOKEN) == "Bearer ***"


@pytest.mark.parametrize(("cause", "function", "message"), [
    ("HTTP 404: gone", None, "HTTP 404: gone"),
    ("HTTP 404: gone", "items.get_item", "items.get_item: HTTP 404: gone"),
    # Worded by the bridge itself, which names the function: named once.
    ("items.get_item: parameter 'id' must not be empty", "items.get_item",
     "items.get_item: parameter 'id' must not be empty"),
])
def test_a_call_error_is_a_record_worded_once(cause, function, message):
    error = RemoteError(cause, status=404, function=function, account="work")
    assert (error.cause, error.function, error.account, error.status) == (cause, function, "work", 404)
    assert error.message == str(error) == message
    assert isinstance(error, CallError) and not isinstance(IntegrationError("x"), CallError)
