"""Freshchat account URLs: every shape a user may write, and every shape we refuse."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from integrations.freshchat.accounts import SCHEME, normalize_url
from luabridge._config import load_accounts
from luabridge._errors import ConfigError
from luabridge._registry import Account, Secret

ACCEPTED = [
    ("acme", "https://acme.freshchat.com/v2"),
    ("  ACME  ", "https://acme.freshchat.com/v2"),
    ("my-team-42", "https://my-team-42.freshchat.com/v2"),
    ("acme.freshchat.com", "https://acme.freshchat.com/v2"),
    ("api.eu.freshchat.com", "https://api.eu.freshchat.com/v2"),
    ("acme.freshchat.com/v2/", "https://acme.freshchat.com/v2"),
    ("https://acme.freshchat.com", "https://acme.freshchat.com/v2"),
    ("https://acme.freshchat.com/", "https://acme.freshchat.com/v2"),
    ("https://acme.freshchat.com/v2", "https://acme.freshchat.com/v2"),
    ("https://acme.freshchat.com/v2//", "https://acme.freshchat.com/v2"),
    ("HTTPS://Acme.Freshchat.COM/v2", "https://acme.freshchat.com/v2"),
    ("https://api.freshchat.com:8443/v2", "https://api.freshchat.com:8443/v2"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v2"),
    ("http://127.9.9.9:8080/v2/", "http://127.9.9.9:8080/v2"),
    ("http://localhost:5000/v2", "http://localhost:5000/v2"),
    ("http://[::1]:5000", "http://[::1]:5000/v2"),
    (SCHEME.default_url, SCHEME.default_url),
]


@pytest.mark.parametrize(("text", "url"), ACCEPTED)
def test_accepted_urls(text, url):
    assert normalize_url(text) == url


BRACKETS = "the URL's host is malformed: brackets must hold an IPv6 address, such as [::1]"
HOST_RULE = ("the URL's host is not a valid host name (letters, digits and '-', in dot-separated labels of "
             "at most 63 characters)")
REFUSED = [
    ("", "the URL is empty"),
    ("   ", "the URL is empty"),
    ("http://acme.freshchat.com", "plain http:// is allowed only for loopback hosts (localhost, 127.0.0.1, "
     "::1), not acme.freshchat.com; use https:// so the token is not sent unencrypted"),
    ("http://10.0.0.5:8080", "plain http:// is allowed only for loopback hosts (localhost, 127.0.0.1, "
     "::1), not 10.0.0.5; use https:// so the token is not sent unencrypted"),
    ("ftp://acme.freshchat.com", "unsupported URL scheme 'ftp'; use https://"),
    ("https://user:pa55@acme.freshchat.com/v2",
     "the URL must not contain a user name or password; put the token in the account's token setting"),
    ("https://acme.freshchat.com/v2?x=1", "the URL must not contain a query ('?...')"),
    ("https://acme.freshchat.com/v2?", "the URL must not contain a query ('?...')"),
    ("https://acme.freshchat.com/v2#top", "the URL must not contain a fragment ('#...')"),
    ("https://acme.freshchat.com/v1",
     "unexpected path '/v1'; give the account's host, optionally followed by /v2"),
    ("https://acme.freshchat.com/v2/agents",
     "unexpected path '/v2/agents'; give the account's host, optionally followed by /v2"),
    ("https://", "the URL has no host"),
    ("https://acme.freshchat.com:99999", "the URL has an invalid port"),
    ("https://acme_team.freshchat.com", HOST_RULE),
    ("https://" + "a" * 64 + ".freshchat.com", HOST_RULE),
    ("acme freshchat.com", HOST_RULE),
    ("https://acme.fresh\nchat.com", "the URL contains a control character (a line break or tab inside it?)"),
    ("https://acme.freshchat.com/v2\t/agents",
     "the URL contains a control character (a line break or tab inside it?)"),
    ("https://[::1", BRACKETS),
    ("https://[127.0.0.1]/v2", BRACKETS),
    ("https://[v1.acme]/v2", BRACKETS),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_refused_urls(text, message):
    with pytest.raises(ConfigError) as caught:
        normalize_url(text)
    assert str(caught.value) == message


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xMjMifQ.c2lnbmF0dXJl"
IN_URL = "the URL contains a token (a JWT); put the token in the account's token setting"


@pytest.mark.parametrize(("text", "message"), [
    (JWT, "this is a token (a JWT), not a URL; were the URL and token settings swapped?"),
    ("https://" + JWT, IN_URL),
    ("https://acme.freshchat.com/v2/" + JWT, IN_URL),
    ("https://acme.freshchat.com/v2?token=" + JWT, IN_URL),
    ("https://" + JWT + "@acme.freshchat.com", IN_URL),
    (JWT + "://acme", IN_URL),
])
def test_a_token_pasted_as_url_is_refused_without_being_echoed(text, message):
    with pytest.raises(ConfigError) as caught:
        normalize_url(text)
    assert str(caught.value) == message


TOKEN = "Sup3rS3cretT0ken"  # a valid host name label, so a URL can hold it as its host
ODD_TOKEN = "s3cr3t+t0k/en=="  # changed by percent-encoding


@pytest.mark.parametrize("url", [
    f"https://acme.freshchat.com/v2?token={TOKEN}",
    f"https://acme.freshchat.com/v2?token={quote(ODD_TOKEN, safe='')}",
    f"https://{TOKEN}@acme.freshchat.com/v2",
    f"https://agent:{TOKEN}@acme.freshchat.com",
    f"https://acme.freshchat.com/v2/{TOKEN}",
    f"https://acme.freshchat.com/v2/{ODD_TOKEN}",
    f"https://acme.freshchat.com/v2/{quote(ODD_TOKEN, safe='')}",
    f"https://acme.freshchat.com/{TOKEN.lower()}",
    f"http://{TOKEN}.example.com",  # quoted, lower-cased, by the plain http:// message
    f"{TOKEN}://acme.freshchat.com",  # quoted, lower-cased, as the scheme
    f"https://acme.freshchat.com/v2#{TOKEN}",
])
def test_no_config_error_shows_a_token_pasted_into_a_url(tmp_path, url):
    environ = {"HOME": str(tmp_path), "FRESHCHAT_TOKEN": TOKEN, "FRESHCHAT_WORK_TOKEN": ODD_TOKEN,
               "FRESHCHAT_WORK_URL": url}
    with pytest.raises(ConfigError) as caught:
        load_accounts([type("Freshchat", (), {"name": "freshchat", "accounts": SCHEME})], environ=environ)
    message = str(caught.value).lower()
    assert message.startswith("freshchat_work_url: ")
    for token in (TOKEN, ODD_TOKEN):
        for spelling in (token, quote(token, safe=""), quote(token)):
            assert spelling.lower() not in message
    assert caught.value.__cause__ is None  # nor in a chained exception


def test_the_scheme_reads_freshchat_variables_and_the_access_token_alias(tmp_path):
    accounts = load_accounts(
        [type("Freshchat", (), {"name": "freshchat", "accounts": SCHEME})],
        environ={"HOME": str(tmp_path), "FRESHCHAT_ACCESS_TOKEN": "t1", "FRESHCHAT_WORK_URL": "acme",
                 "FRESHCHAT_WORK_ACCESS_TOKEN": "t2"},
    )["freshchat"]
    assert accounts == {
        "default": Account("freshchat", "default", "https://api.freshchat.com/v2", Secret("t1")),
        "work": Account("freshchat", "work", "https://acme.freshchat.com/v2", Secret("t2")),
    }
