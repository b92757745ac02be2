"""Tests of the Freshchat simulator, its seeded data and its fault plans, over real loopback HTTP."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
import threading
import time
import tracemalloc
import zlib
from typing import Any

import pytest
import requests

from integrations.freshchat.simdata import REFERENCE_IDS, STATUS_COUNTS, build_dataset
from integrations.freshchat.simfaults import FaultPlan, FaultRule
from integrations.freshchat.simulator import Simulator

LISTS = ("agents", "groups", "channels", "conversations")
ID_KEY = {"agents": "id", "groups": "id", "channels": "id", "conversations": "conversation_id"}


def origin(sim: Simulator) -> str:
    return sim.url.removesuffix("/v2")


def get(session: requests.Session, sim: Simulator, path: str, **params: Any) -> requests.Response:
    return session.get(f"{sim.url}{path}", params=params, timeout=5)


def create_body(user_id: str = "user-456", text: str = "I need help", **extra: Any) -> dict[str, Any]:
    """The body create_conversation sends (the wire mapping of client.py)."""
    message = {"message_parts": [{"text": {"content": text}}], "message_type": "normal",
               "actor_type": "user", "actor_id": user_id}
    return {"users": [{"id": user_id}], "messages": [message], **extra}


MESSAGE = create_body()["messages"][0]


def walk(session: requests.Session, sim: Simulator, name: str, **params: Any) -> tuple[list[str], int]:
    """Follow ``links.next_page`` from page 1 to the end; return every id seen and the number of pages."""
    body = get(session, sim, f"/{name}", **params).json()
    ids, pages = [], 0
    while True:
        pages += 1
        assert body["pagination"]["current_page"] == pages
        ids += [item[ID_KEY[name]] for item in body[name]]
        if "next_page" not in body["links"]:
            assert pages == max(body["pagination"]["total_pages"], 1)
            return ids, pages
        body = session.get(origin(sim) + body["links"]["next_page"]["href"], timeout=5).json()


# -- auth and token ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "bearer {token}", "Bearer {token}x"])
def test_requests_without_the_exact_bearer_token_get_401(simulator, header):
    headers = {} if header is None else {"Authorization": header.format(token=simulator.token)}
    response = requests.get(f"{simulator.url}/agents", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == 401 and response.json()["status"] == "UNAUTHORIZED"
    assert simulator.received[-1].authorized is False


def test_the_token_is_a_jwt_whose_sub_is_a_seeded_agent(simulator, session):
    header, payload, signature = simulator.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["typ"] == "JWT" and signature
    agent = get(session, simulator, f"/agents/{claims['sub']}").json()
    assert agent["id"] == claims["sub"] and agent["first_name"] and agent["email"]


def test_the_token_is_redacted_in_what_the_simulator_records(simulator, session):
    get(session, simulator, "/agents")
    record = simulator.received[-1]
    assert record.headers["Authorization"] == "REDACTED" and record.authorized
    assert simulator.token not in repr(simulator.received) and simulator.token not in repr(simulator)


def test_a_custom_token_replaces_the_default():
    with Simulator(token="secret") as sim:
        ok = requests.get(f"{sim.url}/groups", headers={"Authorization": "Bearer secret"}, timeout=5)
        assert ok.status_code == 200


# -- routes and envelopes --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_lists_answer_freshchat_envelopes(simulator, session, name):
    response = get(session, simulator, f"/{name}", page=1, items_per_page=2)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {name, "pagination", "links"} and len(body[name]) == 2
    assert set(body["pagination"]) == {"total_items", "total_pages", "current_page", "items_per_page"}
    assert body["links"]["next_page"] == {"href": f"/v2/{name}?items_per_page=2&page=2", "rel": "next_page",
                                          "type": "GET"}
    assert set(body["links"]) == {"first_page", "next_page", "last_page"}  # no previous_page on page 1


@pytest.mark.parametrize(("name", "per_page"), [(n, p) for n in LISTS for p in (1, 7, 10, 100)])
def test_walking_the_links_covers_every_item_exactly_once(simulator, session, name, per_page):
    ids, pages = walk(session, simulator, name, items_per_page=per_page)
    expected = [item[ID_KEY[name]] for item in getattr(simulator.dataset, name)]
    assert ids == expected and len(set(ids)) == len(ids)
    assert pages == -(-len(expected) // per_page)


def test_defaults_are_page_1_and_10_items(simulator, session):
    body = get(session, simulator, "/agents").json()
    assert body["pagination"] == {"total_items": len(simulator.dataset.agents), "total_pages": 4,
                                  "current_page": 1, "items_per_page": 10}


def test_a_page_past_the_end_is_empty(simulator, session):
    body = get(session, simulator, "/groups", page=9, items_per_page=2).json()
    assert body["groups"] == [] and "next_page" not in body["links"]
    assert body["links"]["previous_page"]["href"] == "/v2/groups?items_per_page=2&page=3"


@pytest.mark.parametrize(("param", "value"), [("page", "0"), ("page", "abc"), ("page", "-1"), ("page", ""),
                                              ("items_per_page", "0"), ("items_per_page", "101"),
                                              ("items_per_page", "2.5")])
def test_bad_paging_parameters_get_a_400_body(simulator, session, param, value):
    response = get(session, simulator, "/conversations", **{param: value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["status"] == "INVALID_VALUE" and param in body["message"]


@pytest.mark.parametrize("status", sorted(STATUS_COUNTS))
def test_the_status_filter(simulator, session, status):
    ids, _ = walk(session, simulator, "conversations", status=status, items_per_page=100)
    assert len(ids) == STATUS_COUNTS[status]
    by_id = {c["conversation_id"]: c for c in simulator.dataset.conversations}
    assert all(by_id[i]["status"] == status for i in ids)


def test_the_status_filter_takes_several_statuses_comma_separated_in_any_case(simulator, session):
    ids, _ = walk(session, simulator, "conversations", status="NEW, Reopened", items_per_page=100)
    assert len(ids) == STATUS_COUNTS["new"] + STATUS_COUNTS["reopened"]
    by_id = {c["conversation_id"]: c for c in simulator.dataset.conversations}
    assert {by_id[i]["status"] for i in ids} == {"new", "reopened"}


def test_the_inbox_filter_matches_channel_id_and_links_keep_filters(simulator, session):
    body = get(session, simulator, "/conversations", inbox_id="channel-789", status="assigned",
               items_per_page=2).json()
    assert body["conversations"] and all(c["channel_id"] == "channel-789" and c["status"] == "assigned"
                                         for c in body["conversations"])
    expected = "/v2/conversations?inbox_id=channel-789&items_per_page=2&page=2&status=assigned"
    assert body["links"]["next_page"]["href"] == expected
    ids, _ = walk(session, simulator, "conversations", inbox_id="channel-789", items_per_page=20)
    assert len(ids) == sum(c["channel_id"] == "channel-789" for c in simulator.dataset.conversations)


def test_unknown_inbox_matches_nothing_and_unknown_status_is_rejected(simulator, session):
    body = get(session, simulator, "/conversations", inbox_id="nope").json()
    assert body["conversations"] == [] and body["pagination"]["total_items"] == 0
    for word in ("open", "pending", "closed", "new,open"):  # the reference's words are the client's to map
        response = get(session, simulator, "/conversations", status=word)
        assert response.status_code == 400 and "status must be one or more of" in response.json()["message"]


@pytest.mark.parametrize(("path", "status"), [
    ("/conversations/nope", "CONVERSATION_NOT_FOUND"),
    ("/conversations/nope/messages", "CONVERSATION_NOT_FOUND"),
    ("/agents/nope", "AGENT_NOT_FOUND"), ("/users/nope", "USER_NOT_FOUND"), ("/teams", "NOT_FOUND"),
    ("/agents/agent-123/extra", "NOT_FOUND"),
])
def test_unknown_ids_and_paths_get_404_bodies(simulator, session, path, status):
    response = get(session, simulator, path)
    assert response.status_code == 404 and response.json()["status"] == status
    assert set(response.json()) == {"code", "status", "message"}


def test_a_wrong_method_gets_405(simulator, session):
    response = session.delete(f"{simulator.url}/agents", timeout=5)
    assert response.status_code == 405 and response.json()["status"] == "METHOD_NOT_ALLOWED"


def test_path_ids_are_percent_decoded_as_one_segment(simulator):
    connection = http.client.HTTPConnection("127.0.0.1", int(simulator.url.split(":")[2].split("/")[0]))
    headers = {"Authorization": f"Bearer {simulator.token}"}
    for raw, status in (("/v2/agents/%61gent-123", 200), ("/v2/agents/agent-123%2Fx", 404)):
        connection.request("GET", raw, headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == status
        assert body.get("id") == "agent-123" if status == 200 else body["status"] == "AGENT_NOT_FOUND"
    connection.close()
    assert simulator.received[-1].path == "/v2/agents/agent-123%2Fx"


def test_single_objects_and_the_account_configuration(simulator, session):
    conv = get(session, simulator, "/conversations/abc-123-def").json()
    assert conv["status"] == "assigned" and conv["created_time"].endswith("Z") and "id" not in conv
    assert conv["assigned_agent_id"] == "agent-123" and "inbox_id" not in conv and "messages" not in conv
    for key in ("conversation_internal_id", "app_id", "channel_id", "user_id", "properties", "updated_time",
                "url"):
        assert key in conv
    agent = get(session, simulator, "/agents/agent-123").json()
    assert (agent["first_name"], agent["last_name"]) == ("Alex", "Rivera")
    assert agent["email"] == "alex.rivera@acme.example"
    assert get(session, simulator, "/users/user-456").json()["id"] == "user-456"
    account = get(session, simulator, "/accounts/configuration").json()
    assert set(account) == {"account_id", "app_id", "organisation_id", "account_domain", "plan_type",
                            "datacenter"}


def test_messages_come_newest_first_with_a_single_next_link(simulator, session):
    thread = simulator.dataset.messages["abc-123-def"]
    body = get(session, simulator, "/conversations/abc-123-def/messages", items_per_page=1).json()
    assert body["messages"] == [thread[-1]]
    assert body["link"]["href"] == "/v2/conversations/abc-123-def/messages?items_per_page=1&page=2"
    assert "link" not in get(session, simulator, "/conversations/abc-123-def/messages").json()


def test_normal_responses_carry_rate_limit_headers(simulator, session):
    first, second = (get(session, simulator, "/groups").headers for _ in range(2))
    assert int(first["X-RateLimit-Limit"]) > int(first["X-RateLimit-Remaining"]) > int(
        second["X-RateLimit-Remaining"])
    assert int(first["X-RateLimit-Reset"]) > time.time()


# -- create ----------------------------------------------------------------------------------------------


def test_create_then_get_list_and_messages(simulator, session):
    response = session.post(f"{simulator.url}/conversations", json=create_body(channel_id="channel-789"),
                            timeout=5)
    assert response.status_code == 201
    created = response.json()
    cid = created["conversation_id"]
    assert created["status"] == "new" and created["user_id"] == "user-456"
    assert get(session, simulator, f"/conversations/{cid}").json()["channel_id"] == "channel-789"
    newest = get(session, simulator, "/conversations", status="new").json()["conversations"][0]
    assert newest["conversation_id"] == cid
    message = get(session, simulator, f"/conversations/{cid}/messages").json()["messages"][0]
    assert message["message_parts"] == [{"text": {"content": "I need help"}}]
    assert message["actor_id"] == "user-456"
    assert [c["conversation_id"] for c in simulator.created] == [cid]
    assert simulator.received[-4].body == create_body(channel_id="channel-789")


def test_create_without_channel_uses_the_default_channel(simulator, session):
    created = session.post(f"{simulator.url}/conversations", json=create_body(), timeout=5).json()
    assert created["channel_id"] == simulator.dataset.channels[0]["id"]


@pytest.mark.parametrize(("body", "code", "status"), [
    ({"messages": create_body()["messages"]}, 400, "INVALID_VALUE"),
    ({**create_body(), "users": []}, 400, "INVALID_VALUE"),
    ({"users": [{"id": "user-456"}]}, 400, "INVALID_VALUE"),
    (create_body(text=""), 400, "INVALID_VALUE"),
    ({**create_body(), "messages": [{**MESSAGE, "actor_type": "bot"}]}, 400, "INVALID_VALUE"),
    ({**create_body(), "messages": [{**MESSAGE, "actor_id": "user-1"}]}, 400, "INVALID_VALUE"),
    (["not", "an", "object"], 400, "INVALID_VALUE"),
    (create_body(user_id="nobody"), 404, "USER_NOT_FOUND"),
    (create_body(channel_id="nope"), 404, "CHANNEL_NOT_FOUND"),
])
def test_create_validates_like_freshchat_and_stores_nothing_on_error(simulator, session, body, code, status):
    response = session.post(f"{simulator.url}/conversations", json=body, timeout=5)
    assert (response.status_code, response.json()["status"]) == (code, status)
    assert simulator.created == []


def test_a_body_that_is_not_json_is_recorded_as_text_and_rejected(simulator, session):
    response = session.post(f"{simulator.url}/conversations", data="{oops", timeout=5)
    assert response.status_code == 400 and simulator.received[-1].body == "{oops"


# -- faults ----------------------------------------------------------------------------------------------


def test_latency_delays_matching_requests_only(simulator, session):
    # A delay well above the bound for the other request: on a busy machine a plain request can take
    # a few hundred milliseconds, so a tight bound would fail without any delay applied.
    simulator.faults.add("latency", delay=1.2, path="/v2/agents")
    started = time.perf_counter()
    get(session, simulator, "/agents")
    assert time.perf_counter() - started >= 1.2
    started = time.perf_counter()
    get(session, simulator, "/groups")
    assert time.perf_counter() - started < 1.0


def test_429_carries_retry_after_and_rate_limit_headers_then_stops(simulator, session):
    simulator.faults.add(FaultPlan.parse("429:times=2:retry_after=1").rules[0])
    statuses = []
    for _ in range(3):
        response = get(session, simulator, "/agents")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json() == {"code": 429, "status": "TOO_MANY_REQUESTS",
                                       "message": "rate limit exceeded, retry later"}
            assert response.headers["Retry-After"] == "1" and response.headers["X-RateLimit-Remaining"] == "0"
            assert int(response.headers["X-RateLimit-Reset"]) >= time.time() + 1
            assert response.headers["X-RateLimit-Limit"]
    assert statuses == [429, 429, 200]


@pytest.mark.parametrize(("code", "status"), [(500, "INTERNAL_SERVER_ERROR"), (502, "BAD_GATEWAY"),
                                              (503, "SERVICE_UNAVAILABLE")])
def test_5xx_faults_answer_freshchat_bodies(simulator, session, code, status):
    simulator.faults.add("status", status=code)
    response = get(session, simulator, "/conversations/abc-123-def")
    assert response.status_code == code and response.json()["status"] == status


def test_every_nth_request_on_a_path():
    with Simulator(faults="503:path=/v2/agents:every=3") as sim, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {sim.token}"
        agents = [get(session, sim, "/agents").status_code for _ in range(6)]
        assert agents == [200, 200, 503, 200, 200, 503]
        assert get(session, sim, "/groups").status_code == 200


@pytest.mark.parametrize(("variant", "content_type"), [("json", "application/json"), ("html", "text/html")])
def test_malformed_bodies(simulator, session, variant, content_type):
    simulator.faults.add("malformed", variant=variant, times=1)
    response = get(session, simulator, "/agents")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(content_type)
    with pytest.raises(ValueError):
        response.json()
    assert get(session, simulator, "/agents").json()["agents"]


def test_drop_closes_the_connection_without_an_answer(simulator, session):
    simulator.faults.add("drop", times=1)
    with pytest.raises(requests.ConnectionError):
        get(session, simulator, "/agents")
    assert get(session, simulator, "/agents").status_code == 200
    assert simulator.connections_opened == 2


def test_drop_after_store_stores_exactly_once(simulator, session):
    simulator.faults.add("drop_after_store", method="POST", path="/v2/conversations", times=1)
    with pytest.raises(requests.ConnectionError):
        session.post(f"{simulator.url}/conversations", json=create_body(), timeout=5)
    assert len(simulator.created) == 1 and simulator.count("POST", "/v2/conversations") == 1
    cid = simulator.created[0]["conversation_id"]
    assert get(session, simulator, f"/conversations/{cid}").status_code == 200


def test_drop_after_store_with_a_stall_outlasts_the_client_timeout(simulator, session):
    simulator.faults.add("drop_after_store", method="POST", stall=5)
    started = time.perf_counter()
    with pytest.raises(requests.ReadTimeout):
        session.post(f"{simulator.url}/conversations", json=create_body(), timeout=0.2)
    assert len(simulator.created) == 1 and time.perf_counter() - started < 1
    assert get(session, simulator, "/agents").status_code == 200  # a GET is not matched by the POST rule


def test_faults_can_be_cleared_and_count_their_firings(simulator, session):
    rule = simulator.faults.add("status", status=503, times=2)
    assert [get(session, simulator, "/groups").status_code for _ in range(3)] == [503, 503, 200]
    assert (rule.seen, rule.fired) == (2, 2)
    simulator.faults.add("status", status=500)
    simulator.faults.clear()
    assert get(session, simulator, "/groups").status_code == 200


def test_latency_adds_to_the_first_terminal_fault_and_later_rules_do_not_count():
    plan = FaultPlan.parse("latency=0.1,503:times=1,500")
    first, second = plan.decide("GET", "/v2/agents"), plan.decide("GET", "/v2/agents")
    assert (first.delay, first.rule.status, second.delay, second.rule.status) == (0.1, 503, 0.1, 500)
    assert plan.rules[2].seen == 1


def raw_get(sim: Simulator, path: str, method: str = "GET", body: bytes = b"") -> socket.socket:
    """Send one request on a raw socket and return the socket, for a test to read the answer as it comes."""
    port = int(sim.url.split(":")[2].split("/")[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sim.token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read up to the end of the answer's head; return the head and the body bytes already received."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def drain(sock: socket.socket, limit: int | None = None) -> int:
    """Receive into one buffer until the server closes or ``limit`` bytes came; return how many came."""
    buffer, total = bytearray(1 << 20), 0
    while limit is None or total < limit:
        count = sock.recv_into(buffer)
        if not count:
            break
        total += count
    return total


@pytest.mark.parametrize("size", [15, 4096, 65536 * 3 + 7])
def test_huge_answers_valid_json_of_exactly_its_size(simulator, session, size):
    simulator.faults.add("huge", size=size, times=1)
    response = get(session, simulator, "/agents")
    assert response.status_code == 200 and response.headers["Content-Length"] == str(size)
    assert len(response.content) == size and set(json.loads(response.content)) == {"padding"}
    assert get(session, simulator, "/agents").json()["agents"]


def test_huge_streams_200_mib_without_holding_it(simulator):
    simulator.faults.add(FaultPlan.parse("huge=200M:times=1").rules[0])
    tracemalloc.start()
    try:
        with raw_get(simulator, "/v2/agents") as sock:
            head, rest = read_head(sock)
            received = len(rest) + drain(sock, (200 << 20) - len(rest))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"Content-Length: 209715200" in head and received == 200 << 20
    assert peak < 16 << 20, peak  # the simulator generates the body as it sends it


def test_a_gzip_bomb_inflates_to_valid_json_of_its_size(simulator, session):
    simulator.faults.add("gzip_bomb", size=3 << 20, times=1)
    response = get(session, simulator, "/agents")
    assert response.headers["Content-Encoding"] == "gzip" and response.headers["Transfer-Encoding"] == "chunked"
    assert len(response.content) == 3 << 20 and set(json.loads(response.content)) == {"padding"}


def test_a_gzip_bomb_is_a_thousandth_of_its_size_on_the_wire(simulator, session):
    simulator.faults.add("gzip_bomb", size=100 << 20, times=1)
    response = session.get(f"{simulator.url}/agents", stream=True, timeout=10)
    compressed = b"".join(response.raw.stream(65536, decode_content=False))
    assert len(compressed) < (100 << 20) // 500
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(inflater.decompress(compressed[:4096], 1 << 20)) == 1 << 20  # inflates a MiB from 4 KB
    assert inflater.decompress(b"", 13) == b"xxxxxxxxxxxxx" and gzip.decompress(compressed)[:13] == b'{"padding": "'


def test_endless_never_ends_and_the_simulator_recovers(simulator, session):
    simulator.faults.add("endless", path="/v2/conversations", times=1)
    response = session.get(f"{simulator.url}/conversations", stream=True, timeout=10)
    assert response.headers["Transfer-Encoding"] == "chunked"
    start, received = b"", 0
    for piece in response.iter_content(1 << 20):
        start = (start + piece)[:100]
        received += len(piece)
        if received > 16 << 20:
            break
    response.close()
    assert received > 16 << 20 and start.startswith(b'{"conversations": [{"conversation_id": "endless"')
    assert get(session, simulator, "/conversations").json()["conversations"]


def test_trickle_sends_the_body_one_byte_at_a_time(simulator):
    simulator.faults.add("trickle", delay=0.1, path="/v2/agents/agent-123")
    with raw_get(simulator, "/v2/agents/agent-123") as sock:
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200 ") and rest == b""
        started = time.perf_counter()
        assert sock.recv(10) + sock.recv(10) + sock.recv(10) == b'{"i'
        assert time.perf_counter() - started >= 0.2


def test_trickle_can_send_the_status_line_and_headers_one_byte_at_a_time(simulator):
    simulator.faults.add(FaultPlan.parse("trickle=0.1:part=headers").rules[0])
    with raw_get(simulator, "/v2/groups") as sock:
        started = time.perf_counter()
        received = b""
        while len(received) < 5:
            received += sock.recv(10)
        assert received == b"HTTP/"
        assert time.perf_counter() - started >= 0.4


def test_a_trickled_create_is_stored_though_its_answer_never_arrives_in_time(simulator, session):
    simulator.faults.add("trickle", delay=0.5, method="POST", part="headers")
    with pytest.raises(requests.ReadTimeout):
        session.post(f"{simulator.url}/conversations", json=create_body(), timeout=(5, 0.3))
    assert len(simulator.created) == 1


def test_stop_ends_trickled_and_endless_answers(session):
    sim = Simulator(faults="trickle=5:path=/v2/groups,endless:path=/v2/agents").start()
    slow = raw_get(sim, "/v2/groups")
    endless = session.get(f"{sim.url}/agents", stream=True, timeout=10)
    next(endless.iter_content(65536))  # the server is now blocked writing into a full socket
    time.sleep(0.2)
    started = time.perf_counter()
    sim.stop()
    assert time.perf_counter() - started < 2
    with slow:
        assert drain(slow) < 500  # closed after at most a few bytes of the head
    endless.close()


# -- FaultPlan grammar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("latency=0.05", FaultRule("latency", delay=0.05)),
    ("429:times=2:retry_after=1", FaultRule("status", status=429, times=2, retry_after=1)),
    ("503:path=/v2/agents:every=3", FaultRule("status", status=503, path="/v2/agents", every=3)),
    ("malformed", FaultRule("malformed")),
    ("malformed=html:status=502", FaultRule("malformed", variant="html", status=502)),
    ("drop:method=get", FaultRule("drop", method="GET")),
    (" drop_after_store : method=POST : stall=2 ", FaultRule("drop_after_store", method="POST", stall=2)),
    ("huge=200M", FaultRule("huge", size=200 << 20)),
    ("huge=4096", FaultRule("huge", size=4096)),
    ("huge=1000", FaultRule("huge", size=1000)),
    ("gzip_bomb=400m:times=1", FaultRule("gzip_bomb", size=400 << 20, times=1)),
    ("gzip_bomb=2G", FaultRule("gzip_bomb", size=2 << 30)),
    ("endless:path=/v2/agents", FaultRule("endless", path="/v2/agents")),
    ("trickle=0.3", FaultRule("trickle", delay=0.3, part="body")),
    ("trickle=0.3:part=headers:method=POST", FaultRule("trickle", delay=0.3, part="headers", method="POST")),
])
def test_parse_builds_rules_and_prints_them_back(spec, expected):
    (rule,) = FaultPlan.parse(spec).rules
    assert rule == expected
    assert FaultPlan.parse(str(rule)).rules == (rule,)


def test_parse_reads_several_rules_and_nothing():
    kinds = [rule.kind for rule in FaultPlan.parse("latency=0.01, 500:times=1,drop").rules]
    assert kinds == ["latency", "status", "drop"]
    assert FaultPlan.parse("").rules == () and FaultPlan.parse(" , ").rules == ()


@pytest.mark.parametrize(("spec", "message"), [
    ("slow", "unknown fault 'slow'"),
    ("latency", "latency needs seconds"),
    ("latency=fast", "latency must be a number"),
    ("429:times=x", "times must be an integer"),
    ("429:times=0", "times must be at least 1"),
    ("503:every=0", "every must be at least 1"),
    ("429:tries=2", "bad option 'tries=2'"),
    ("429:times", "bad option 'times'"),
    ("429:times=1:times=2", "option times given twice"),
    ("200", "HTTP error status"),
    ("499", "HTTP error status"),
    ("drop=1", "drop takes no '=' value"),
    ("malformed=xml", "malformed variant must be json or html"),
    ("latency=0.1:stall=1", "stall applies only to drop"),
    ("drop:retry_after=1", "retry_after applies only to status"),
    ("drop:status=500", "status applies only to status and malformed"),
    ("503:path=v2/agents", "fault path must start with '/'"),
    ("latency=-1", "must not be negative"),
    ("huge", "huge needs a size, e.g. huge=200M"),
    ("huge=lots", "huge needs a size in bytes such as 4096, 64K, 200M or 1G, got 'lots'"),
    ("gzip_bomb=2T", "gzip_bomb needs a size in bytes"),
    ("huge=3", "a huge fault needs a size of at least 15 bytes, got 3"),
    ("endless=1", "endless takes no '=' value"),
    ("trickle", "trickle needs seconds per byte"),
    ("trickle=slow", "trickle must be a number"),
    ("trickle=0.1:part=footer", "trickle part must be headers or body"),
    ("drop:part=body", "part applies only to trickle faults"),
    ("latency=0.1:part=body", "part applies only to trickle faults"),
])
def test_parse_rejects_bad_specs_clearly(spec, message):
    with pytest.raises(ValueError, match="bad fault spec") as error:
        FaultPlan.parse(spec)
    assert message in str(error.value)


# -- connections, threads, determinism -------------------------------------------------------------------


def test_one_session_reuses_one_connection(simulator, session):
    for _ in range(50):
        assert get(session, simulator, "/agents/agent-123").status_code == 200
    assert simulator.connections_opened == 1 and simulator.count("GET", "/v2/agents") == 50
    simulator.reset_counters()
    assert simulator.connections_opened == 0 and simulator.received == []


def test_eight_concurrent_clients(simulator):
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with requests.Session() as http:
                http.headers["Authorization"] = f"Bearer {simulator.token}"
                for _ in range(10):
                    assert get(http, simulator, "/conversations", status="assigned").status_code == 200
                for _ in range(3):
                    assert http.post(f"{simulator.url}/conversations", json=create_body(), timeout=5).ok
        except BaseException as exc:  # collected: an assertion in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert simulator.count("GET") == 80 and simulator.connections_opened == 8
    assert len({c["conversation_id"] for c in simulator.created}) == 24


def test_stop_closes_idle_keep_alive_connections_and_is_idempotent():
    sim = Simulator().start()
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {sim.token}"
        assert get(http, sim, "/groups").ok
        started = time.perf_counter()
        sim.stop()
        sim.stop()
        assert time.perf_counter() - started < 1
        with pytest.raises(requests.ConnectionError):
            get(http, sim, "/groups")


def test_serve_forever_blocks_until_stopped_from_another_thread():
    sim = Simulator()
    server = threading.Thread(target=sim.serve_forever)
    server.start()
    assert requests.get(f"{sim.url}/groups", headers={"Authorization": f"Bearer {sim.token}"}, timeout=5).ok
    sim.stop()
    server.join(timeout=2)
    assert not server.is_alive()
    with pytest.raises(RuntimeError, match="stopped"):
        sim.start()


def test_same_seed_same_data_and_answers():
    assert build_dataset(7) == build_dataset(7) and build_dataset(7) != build_dataset(8)
    with Simulator(seed=7) as one, Simulator(seed=7) as two:
        assert one.token == two.token
        paths = ("/conversations?items_per_page=100&page=2", "/agents/agent-123", "/groups")
        auth = {"Authorization": f"Bearer {one.token}"}
        bodies = [[requests.get(f"{sim.url}{path}", headers=auth, timeout=5).json() for path in paths]
                  for sim in (one, two)]
        assert bodies[0] == bodies[1]


def test_the_reference_ids_exist_for_every_seed():
    for seed in (0, 1, 12345):
        data = build_dataset(seed)
        assert REFERENCE_IDS["conversation"] in data.messages
        assert {REFERENCE_IDS["agent"], REFERENCE_IDS["user"], REFERENCE_IDS["channel"]} <= {
            item["id"] for item in data.agents + data.users + data.channels}
        assert all(agent["first_name"] and agent["email"] for agent in data.agents)
        statuses = [c["status"] for c in data.conversations]
        assert all(statuses.count(status) == count for status, count in STATUS_COUNTS.items())
        by_id = {c["conversation_id"]: c for c in data.conversations}
        reference = by_id[REFERENCE_IDS["conversation"]]
        assert reference["status"] == "assigned" and reference["created_time"].endswith("Z")


def test_created_conversations_get_fresh_ids_on_every_start():
    # `luabridge run --demo` starts a simulator per run: a created id must never repeat another run's.
    body = {"users": [{"id": "user-456"}], "messages": [
        {"message_parts": [{"text": {"content": "hi"}}], "actor_type": "user", "actor_id": "user-456"}]}
    created = []
    for _ in range(2):
        with Simulator(seed=0) as sim:
            answer = requests.post(f"{sim.url}/conversations", json=body, timeout=5,
                                   headers={"Authorization": f"Bearer {sim.token}"}).json()
            created.append((answer["conversation_id"], answer["conversation_internal_id"]))
            assert sim.dataset.conversations == build_dataset(0).conversations  # the seeded data stays
    assert created[0][0] != created[1][0] and created[0][1] != created[1][1]
