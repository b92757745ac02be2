"""The Freshchat client: the exact request each Lua function sends, and what it makes of the answer."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses
from responses import matchers

from integrations.freshchat.client import FreshchatClient, connect
from luabridge import Account, CallContext, IntegrationError, RemoteError, Secret

TOKEN = "fc-token-5b1d-SECRET"
BASE = "https://acme.freshchat.com/v2"
ACCOUNT = Account("freshchat", "default", BASE, Secret(TOKEN))
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
PAGE = {"page": 1, "per_page": 50}


def jwt(claims: object) -> str:
    """An unsigned JWT-shaped token carrying ``claims``."""
    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def context(account: Account = ACCOUNT) -> CallContext:
    return CallContext(account=account, deadline=time.monotonic() + 30)


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def client():
    return FreshchatClient(ACCOUNT, sleep=lambda seconds: None)


REQUESTS = [
    # function, args, method, path, query, JSON body
    ("list_conversations", PAGE, "GET", "/conversations", {"page": "1", "items_per_page": "50"}, None),
    ("list_conversations", {"page": 2, "per_page": 20, "status": "open", "inbox_id": "inbox-7"},
     "GET", "/conversations",
     {"page": "2", "items_per_page": "20", "status": "new,assigned,reopened", "inbox_id": "inbox-7"}, None),
    ("create_conversation", {"user_id": "user-456", "initial_message": "I need help"},
     "POST", "/conversations", {},
     {"users": [{"id": "user-456"}],
      "messages": [{"message_parts": [{"text": {"content": "I need help"}}], "message_type": "normal",
                    "actor_type": "user", "actor_id": "user-456"}]}),
    ("create_conversation", {"user_id": "user-456", "initial_message": "hi", "channel_id": "channel-789"},
     "POST", "/conversations", {},
     {"users": [{"id": "user-456"}], "channel_id": "channel-789",
      "messages": [{"message_parts": [{"text": {"content": "hi"}}], "message_type": "normal",
                    "actor_type": "user", "actor_id": "user-456", "channel_id": "channel-789"}]}),
    ("list_agents", {"page": 3, "per_page": 100}, "GET", "/agents",
     {"page": "3", "items_per_page": "100"}, None),
    ("get_agent", {"id": "agent-123"}, "GET", "/agents/agent-123", {}, None),
    ("get_agent", {"id": "agent 42 é"}, "GET", "/agents/agent%2042%20%C3%A9", {}, None),
    ("get_agent", {"id": "a" * 256}, "GET", "/agents/" + "a" * 256, {}, None),
    ("list_groups", PAGE, "GET", "/groups", {"page": "1", "items_per_page": "50"}, None),
    ("get_current_user", {}, "GET", "/accounts/configuration", {}, None),
]


@pytest.mark.parametrize(("function", "args", "method", "path", "query", "body"), REQUESTS)
def test_each_function_sends_exactly_its_request(mock, client, function, args, method, path, query, body):
    headers = {**HEADERS, "Content-Type": "application/json"} if body is not None else HEADERS
    match = [matchers.query_param_matcher(query), matchers.header_matcher(headers)]
    if body is not None:
        match.append(matchers.json_params_matcher(body))
    mock.add(method, BASE + path, json={}, match=match)
    ctx = context()
    getattr(client, function)(args, ctx)
    assert len(mock.calls) == 1
    assert mock.calls[0].request.url.split("?")[0] == BASE + path
    if body is None:
        assert "Content-Type" not in mock.calls[0].request.headers
    assert ctx.http_status == 200


# The reference's filter words and the Freshchat statuses each is sent as (vocabulary.STATUS_FILTERS).
STATUS_WORDS = [
    ("new", "new"),
    ("open", "new,assigned,reopened"),
    ("pending", "waiting on customer,waiting on internal team"),
    ("resolved", "resolved"),
    ("closed", "resolved"),
]


@pytest.mark.parametrize(("word", "sent"), STATUS_WORDS)
def test_a_status_filter_word_is_sent_as_freshchats_statuses(mock, client, word, sent):
    query = {"page": "1", "items_per_page": "50", "status": sent}
    mock.get(BASE + "/conversations", json={}, match=[matchers.query_param_matcher(query)])
    client.list_conversations({**PAGE, "status": word}, context())


def test_get_conversation_reads_its_messages_page_by_page_and_gives_them_oldest_first(mock, client):
    conversation = {"conversation_id": "conv-1", "channel_id": "ch-1", "status": "assigned"}
    mock.get(BASE + "/conversations/conv-1", json=conversation,
             match=[matchers.query_param_matcher({}), matchers.header_matcher(HEADERS)])
    messages = BASE + "/conversations/conv-1/messages"
    mock.get(messages, json={"messages": [{"id": "m4"}, {"id": "m3"}],
                             "link": {"href": "/v2/conversations/conv-1/messages?page=2", "rel": "next_page"}},
             match=[matchers.query_param_matcher({"page": "1", "items_per_page": "100"})])
    mock.get(messages, json={"messages": [{"id": "m2"}, {"id": "m1"}]},
             match=[matchers.query_param_matcher({"page": "2", "items_per_page": "100"})])
    result = client.get_conversation({"id": "conv-1"}, context())
    assert result == {**conversation, "id": "conv-1", "inbox_id": "ch-1",
                      "messages": [{"id": "m1"}, {"id": "m2"}, {"id": "m3"}, {"id": "m4"}]}


def test_get_conversation_reads_at_most_ten_pages_of_messages(mock, client):
    mock.get(BASE + "/conversations/c1", json={"conversation_id": "c1"})
    mock.get(BASE + "/conversations/c1/messages", json={"messages": [{"id": "m"}], "link": {"href": "next"}})
    result = client.get_conversation({"id": "c1"}, context())
    assert len(result["messages"]) == 10 and len(mock.calls) == 11


@pytest.mark.parametrize(("agent", "status"), [
    ({"availability_status": "AVAILABLE", "login_status": True}, "available"),
    ({"availability_status": "available"}, "available"),
    ({"availability_status": "UNAVAILABLE", "login_status": True}, "unavailable"),
    ({"availability_status": "AVAILABLE", "login_status": False}, "offline"),
    ({"login_status": False}, "offline"),
    ({}, None),
    ({"availability_status": "UNAVAILABLE", "status": "theirs"}, "theirs"),  # Freshchat's own field wins
])
def test_agents_get_a_status_in_the_references_words(mock, client, agent, status):
    mock.get(BASE + "/agents/a1", json={"id": "a1", **agent})
    mock.get(BASE + "/agents", json={"agents": [{"id": "a1", **agent}, "not an object"]})
    one = client.get_agent({"id": "a1"}, context())
    listed = client.list_agents(PAGE, context())["agents"]
    assert one.get("status") == listed[0].get("status") == status
    assert {key: one[key] for key in agent} == agent  # Freshchat's fields are kept as they came
    assert listed[1] == "not an object"


LISTING = {
    "conversations": [{"conversation_id": "c1", "status": "new", "channel_id": "ch-1"}, {"id": "c2"},
                      "not an object"],
    "pagination": {"total_items": 3, "total_pages": 1, "current_page": 1, "items_per_page": 50},
    "links": {"first_page": {"href": "/v2/conversations?items_per_page=50&page=1", "rel": "conversations",
                             "type": "GET"}},
}


def test_list_results_keep_the_envelope_and_conversations_get_both_ids(mock, client):
    mock.get(BASE + "/conversations", json=LISTING)
    result = client.list_conversations(PAGE, context())
    assert result == {
        **LISTING,
        "conversations": [{"conversation_id": "c1", "id": "c1", "status": "new", "channel_id": "ch-1",
                           "inbox_id": "ch-1"},
                          {"id": "c2", "conversation_id": "c2"}, "not an object"],
    }


def test_list_agents_and_groups_return_freshchat_envelopes_untouched(mock, client):
    agents = {"agents": [{"id": "a1", "first_name": "Ada"}], "pagination": {"current_page": 1}, "links": {}}
    groups = {"groups": [{"id": "g1", "name": "Billing"}], "pagination": {"current_page": 1}, "links": {}}
    mock.get(BASE + "/agents", json=agents)
    mock.get(BASE + "/groups", json=groups)
    assert client.list_agents(PAGE, context()) == agents
    assert client.list_groups(PAGE, context()) == groups


@pytest.mark.parametrize(("function", "args", "method", "answer", "result"), [
    ("get_conversation", {"id": "c1"}, "GET", {"conversation_id": "c1", "status": "resolved"},
     {"conversation_id": "c1", "id": "c1", "status": "resolved", "messages": []}),
    ("create_conversation", {"user_id": "u", "initial_message": "m"}, "POST", {"conversation_id": "c9"},
     {"conversation_id": "c9", "id": "c9"}),
])
def test_single_conversations_get_both_ids(mock, client, function, args, method, answer, result):
    mock.add(method, BASE + "/conversations" + ("/c1" if method == "GET" else ""), json=answer)
    if method == "GET":
        mock.get(BASE + "/conversations/c1/messages", json={"messages": []})
    assert getattr(client, function)(args, context()) == result


def test_an_empty_success_body_is_an_empty_table(mock, client):
    mock.post(BASE + "/conversations", status=202, body=b"")
    assert client.create_conversation({"user_id": "u", "initial_message": "m"}, context()) == {}


@pytest.mark.parametrize(("body", "content_type", "kind"), [
    ("<!DOCTYPE html><html><body>Sign in</body></html>", "text/html", "an HTML page"),
    ("  <html>", "text/plain", "an HTML page"),
    ("OK then", "text/plain", 'the text "OK then"'),
])
def test_a_success_body_that_is_not_json_means_a_wrong_url(mock, client, body, content_type, kind):
    mock.get(BASE + "/agents", body=body, content_type=content_type)
    with pytest.raises(RemoteError) as caught:
        client.list_agents(PAGE, context())
    # The client words what went wrong; the bridge puts "freshchat.list_agents: " in front.
    assert caught.value.message == (
        f"HTTP 200 with {kind}, not JSON; the URL of account 'default' ({BASE}) is probably wrong"
    )
    assert caught.value.status == 200


CONFIGURATION = {"account_id": "acc-1", "app_id": "app-1", "datacenter": "US", "plan_type": "growth"}


def jwt_account(claims: object) -> Account:
    return Account("freshchat", "default", BASE, Secret(jwt(claims)))


def test_current_user_merges_the_agent_the_token_names(mock):
    account = jwt_account({"sub": "agent-7", "iat": 1700000000})
    headers = {"Authorization": f"Bearer {account.token.reveal()}"}
    mock.get(BASE + "/accounts/configuration", json=CONFIGURATION, match=[matchers.header_matcher(headers)])
    mock.get(BASE + "/agents/agent-7", match=[matchers.header_matcher(headers)], json={
        "id": "agent-7", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "role_id": "ACCOUNT_ADMIN",
    })
    ctx = context(account)
    assert FreshchatClient(account).get_current_user({}, ctx) == {
        **CONFIGURATION, "id": "agent-7", "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada@example.com",
    }
    assert ctx.http_status == 200


@pytest.mark.parametrize("status", [404, 503])
def test_current_user_survives_a_failed_agent_lookup_without_retrying_it(mock, status, caplog):
    account = jwt_account({"sub": "agent-7"})
    mock.get(BASE + "/accounts/configuration", json=CONFIGURATION)
    mock.get(BASE + "/agents/agent-7", status=status, json={"code": status, "status": "X", "message": "no"})
    caplog.set_level("DEBUG")
    ctx = context(account)
    assert FreshchatClient(account).get_current_user({}, ctx) == CONFIGURATION
    assert len(mock.calls) == 2
    assert ctx.http_status == 200
    assert f"the token's subject is not a known agent (HTTP {status})" in caplog.text


@pytest.mark.parametrize("token", [
    TOKEN,                                        # not a JWT
    jwt({"iss": "freshchat"}),                    # no subject
    jwt({"sub": 42}),                             # a subject that is not a string
    jwt({"sub": "../accounts"}),                  # a subject that is not a safe path segment
    jwt(["not", "claims"]),
    "eyJhbGciOiJIUzI1NiJ9.!!!not-base64-json!!!.sig",
])
def test_current_user_without_a_usable_subject_asks_nothing_more(mock, token):
    account = Account("freshchat", "default", BASE, Secret(token))
    mock.get(BASE + "/accounts/configuration", json=CONFIGURATION)
    assert FreshchatClient(account).get_current_user({}, context(account)) == CONFIGURATION
    assert len(mock.calls) == 1


def test_a_call_for_another_account_is_refused_before_sending(mock, client):
    other = Account("freshchat", "work", "https://work.freshchat.com/v2", Secret("other-token"))
    with pytest.raises(IntegrationError) as caught:
        client.list_agents(PAGE, context(other))
    assert str(caught.value) == (
        "a call for account 'work' reached the client of account 'default'; connect() must make one client "
        "per account"
    )
    assert len(mock.calls) == 0


def test_connect_makes_a_client_with_its_own_session_and_a_safe_repr():
    first, second = connect(ACCOUNT), connect(ACCOUNT)
    assert isinstance(first, FreshchatClient) and first.session is not second.session
    assert first.session.trust_env is False
    assert repr(first) == f"FreshchatClient(account='default', url='{BASE}')"
    assert TOKEN not in repr(first)


def test_calls_from_one_client_share_one_connection():
    peers: list[tuple[str, int]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_GET(self) -> None:
            peers.append(self.client_address)
            body = b'{"agents": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        account = Account("freshchat", "default", f"http://127.0.0.1:{server.server_port}/v2", Secret(TOKEN))
        client = connect(account)
        for _ in range(5):
            assert client.list_agents(PAGE, context(account)) == {"agents": []}
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(peers) == 5 and len(set(peers)) == 1
