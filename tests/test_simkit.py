"""Tests of the simulator kit through a toy service built on it, over real loopback sockets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import luabridge.simkit as simkit
from luabridge.simkit import Answer, Page, ReceivedRequest, Routes, ServiceError, SimServer, query_int

TOKEN = "toy-token-42"
ITEMS = [{"id": f"item-{n}", "name": f"Item {n}"} for n in range(1, 8)]


class Toy(SimServer):
    """Two routes: ``GET /api/items`` (paged by ``page`` and ``size``) and ``GET /api/items/{id}``."""

    base_path = "/api"
    server_version = "ToySimulator/0.1"
    endless_list = ("items", {"id": "endless"})

    def routes(self, request: ReceivedRequest) -> Routes:
        match request.segments:
            case ["api", "items"]:
                return {"GET": lambda: self._list(request.query)}
            case ["api", "items", item_id]:
                return {"GET": lambda: self._get(item_id)}
        return {}

    def error_body(self, error: ServiceError) -> dict[str, Any]:
        return {"error": {"kind": error.code, "text": error.message}}

    def _list(self, query: dict[str, str]) -> Answer:
        page = Page.of(ITEMS, query_int(query, "page", default=1), query_int(query, "size", default=3, maximum=5))
        return Answer(200, {"items": page.items, "next": page.next}, headers={"X-Total": str(page.total_items)})

    def _get(self, item_id: str) -> Answer:
        if item_id == "boom":
            raise KeyError("a bug in the route")
        for item in ITEMS:
            if item["id"] == item_id:
                return Answer(200, item)
        raise ServiceError(404, f"no item {item_id}", code="ITEM_NOT_FOUND")


@pytest.fixture
def toy() -> Iterator[Toy]:
    with Toy(token=TOKEN) as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def get(http: requests.Session, server: SimServer, path: str, **kwargs: Any) -> requests.Response:
    return http.get(server.url + path, timeout=5, **kwargs)


# -- lifecycle ------------------------------------------------------------------------------------------


def test_a_server_binds_a_free_port_on_creation_and_serves_once_started(http):
    server = Toy(token=TOKEN)
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/api")
    assert server.url == server.origin + "/api" and not server.origin.endswith(":0")
    assert server.start() is server
    try:
        response = get(http, server, "/items/item-1")
        assert response.json() == ITEMS[0] and response.headers["Server"].startswith("ToySimulator/0.1 ")
        with pytest.raises(RuntimeError, match="already serving"):
            server.start()
    finally:
        server.stop()
    server.stop()  # twice is fine
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/items", timeout=2)
    with pytest.raises(RuntimeError, match="has been stopped"):
        server.start()


def test_serve_forever_serves_in_the_calling_thread_until_stopped(http):
    server = Toy(token=TOKEN)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        assert get(http, server, "/items").status_code == 200
    finally:
        server.stop()
        thread.join(5)
    assert not thread.is_alive()


def test_stop_closes_a_kept_alive_connection(toy, http):
    assert get(http, toy, "/items").status_code == 200  # the session keeps its connection open
    toy.stop()
    with pytest.raises(requests.ConnectionError):
        get(http, toy, "/items")


def test_a_taken_port_fails_on_creation(toy):
    port = int(toy.origin.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        Toy(token=TOKEN, port=port)


def test_the_server_has_what_an_integration_simulator_must_have(toy):
    # luabridge.Integration.simulator returns a luabridge._registry.Simulator: url, token and these three.
    assert isinstance(toy.url, str) and toy.token == TOKEN
    assert all(callable(getattr(toy, name)) for name in ("start", "stop", "serve_forever"))


# -- routes, answers and errors -------------------------------------------------------------------------


def test_routes_answer_their_payload_status_and_headers(toy, http):
    first = get(http, toy, "/items")
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/json"
    assert first.json() == {"items": ITEMS[:3], "next": 2} and first.headers["X-Total"] == "7"
    assert get(http, toy, "/items", params={"page": 3}).json() == {"items": ITEMS[6:], "next": None}
    assert "X-RateLimit-Limit" not in first.headers  # no rate_limit, no rate headers


@pytest.mark.parametrize(("method", "path", "status", "body"), [
    ("GET", "/items/nope", 404, {"kind": "ITEM_NOT_FOUND", "text": "no item nope"}),
    ("GET", "/things", 404, {"kind": "NOT_FOUND", "text": "no such endpoint: GET /api/things"}),
    ("GET", "/items/item-1/more", 404, {"kind": "NOT_FOUND", "text": "no such endpoint: GET /api/items/item-1/more"}),
    ("POST", "/items", 405, {"kind": "METHOD_NOT_ALLOWED", "text": "POST is not allowed on /api/items; use GET"}),
    ("GET", "/items?size=9", 400, {"kind": "BAD_REQUEST", "text": "size must be an integer from 1 to 5, got '9'"}),
    ("GET", "/items?page=0", 400, {"kind": "BAD_REQUEST", "text": "page must be an integer of at least 1, got '0'"}),
    ("GET", "/items/boom", 500, {"kind": "INTERNAL_SERVER_ERROR", "text": "KeyError: 'a bug in the route'"}),
])
def test_errors_answer_in_the_services_own_body(toy, http, method, path, status, body):
    response = http.request(method, toy.url + path, timeout=5)
    assert (response.status_code, response.json()) == (status, {"error": body})


def test_segments_are_percent_decoded_and_the_path_is_recorded_as_sent(toy, http):
    assert get(http, toy, "/items/a%2Fb").json() == {"error": {"kind": "ITEM_NOT_FOUND", "text": "no item a/b"}}
    assert toy.received[-1].path == "/api/items/a%2Fb"
    assert toy.received[-1].segments == ["api", "items", "a/b"]


def test_a_body_without_content_length_is_refused_and_its_connection_closed(toy, http):
    response = http.post(toy.url + "/items", data=iter([b"{}"]), timeout=5)  # sent chunked
    assert response.status_code == 400
    assert response.json() == {"error": {"kind": "BAD_REQUEST",
                                         "text": "send a body of at most 1 MiB with a Content-Length"}}
    assert get(http, toy, "/items").status_code == 200 and toy.connections_opened == 2  # the first was closed


# -- tokens ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"bearer {TOKEN}", TOKEN, f"Bearer {TOKEN} "])
def test_requests_without_the_exact_bearer_token_are_refused(toy, header):
    headers = {} if header is None else {"Authorization": header}
    response = requests.get(toy.url + "/items/item-1", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": {"kind": "UNAUTHORIZED",
                                         "text": "invalid or missing bearer token in the Authorization header"}}
    assert toy.received[-1].authorized is False


def test_the_token_is_redacted_in_the_record(toy, http):
    get(http, toy, "/items")
    record = toy.received[-1]
    assert record.authorized and record.headers["Authorization"] == "REDACTED"
    assert TOKEN not in repr(toy.received) and TOKEN not in repr(toy)


# -- counters -------------------------------------------------------------------------------------------


def test_requests_and_connections_are_counted_until_reset(toy, http):
    for _ in range(4):
        get(http, toy, "/items/item-2")
    get(http, toy, "/items", params={"page": "2"})
    http.post(toy.url + "/items", json={"name": "new"}, timeout=5)
    assert (toy.count(), toy.count("GET"), toy.count("get", "/api/items/"), toy.count("POST")) == (6, 5, 4, 1)
    assert toy.connections_opened == 1  # one session, one kept-alive connection
    assert toy.received[4].query == {"page": "2"} and toy.received[5].body == {"name": "new"}
    with requests.Session() as other:
        other.get(toy.url + "/items", timeout=5)
    assert toy.connections_opened == 2
    toy.reset_counters()
    assert (toy.received, toy.count(), toy.connections_opened) == ([], 0, 0)


# -- faults ---------------------------------------------------------------------------------------------


def test_a_status_fault_answers_the_services_error_body_then_stops(http):
    with Toy(token=TOKEN, faults="503:path=/api/items:times=2") as toy:
        statuses = [get(http, toy, "/items").status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        toy.faults.add("status", status=429, retry_after=0.5, times=1)
        limited = get(http, toy, "/items/item-1")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "0.5"
    assert limited.json() == {"error": {"kind": "TOO_MANY_REQUESTS", "text": "rate limit exceeded, retry later"}}
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert toy.count() == 4  # a faulted request is recorded too


def test_a_status_fault_before_the_token_check(toy):
    toy.faults.add("status", status=502)
    response = requests.get(toy.url + "/items", timeout=5)  # no token at all
    assert response.status_code == 502 and response.json()["error"]["kind"] == "BAD_GATEWAY"


def test_latency_delays_every_matching_answer(toy, http):
    toy.faults.add("latency", delay=0.3, path="/api/items/")
    started = time.perf_counter()
    assert get(http, toy, "/items/item-1").status_code == 200
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    assert get(http, toy, "/items").status_code == 200  # "/api/items" does not start with "/api/items/"
    assert time.perf_counter() - started < 0.25


def test_a_huge_answer_is_valid_json_of_exactly_its_size(toy, http):
    toy.faults.add("huge", size=3 << 20, times=1)
    response = get(http, toy, "/items")
    assert response.headers["Content-Length"] == str(3 << 20) and len(response.content) == 3 << 20
    assert json.loads(response.content) == {"padding": "x" * ((3 << 20) - simkit.MIN_SIZE)}
    assert get(http, toy, "/items").json()["items"] == ITEMS[:3]


def test_an_endless_answer_never_ends_and_the_server_recovers(toy, http):
    toy.faults.add("endless", times=1)
    response = get(http, toy, "/items", stream=True)
    assert response.headers["Transfer-Encoding"] == "chunked"
    start, received = b"", 0
    for piece in response.iter_content(65536):
        start += piece[:100 - len(start)]
        received += len(piece)
        if received > 8 << 20:
            break
    response.close()
    assert received > 8 << 20 and start.startswith(b'{"items": [{"id": "endless"}, {"id": "endless"}')
    assert get(http, toy, "/items/item-1").json() == ITEMS[0]


def test_a_dropped_connection_answers_nothing(toy, http):
    toy.faults.add("drop", times=1)
    with pytest.raises(requests.ConnectionError):
        get(http, toy, "/items")
    assert get(http, toy, "/items").status_code == 200 and toy.count() == 2


def test_malformed_answers_use_the_default_bodies(toy, http):
    toy.faults.add("malformed", variant="json", times=1)
    toy.faults.add("malformed", variant="html", status=502, times=1)
    truncated, html = get(http, toy, "/items"), get(http, toy, "/items")
    assert truncated.status_code == 200 and truncated.content.startswith(b'{"items": [')
    assert html.status_code == 502 and html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        truncated.json()


def test_a_rate_limit_reports_headers_on_every_answer(http):
    class Limited(Toy):
        rate_limit = 10

    with Limited(token=TOKEN) as server:
        first, second = (get(http, server, "/items").headers for _ in range(2))
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"]) == (
        "10", "9", "8")
    assert int(first["X-RateLimit-Reset"]) > time.time()


def test_a_bad_fault_spec_fails_on_creation():
    with pytest.raises(ValueError, match="bad fault spec 'slow': unknown fault 'slow'"):
        Toy(token=TOKEN, faults="slow")


# -- pages and the public face --------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "items", "previous", "next_", "last"), [
    (1, ITEMS[:3], None, 2, 3), (3, ITEMS[6:], 2, None, 3), (9, [], 3, None, 3),
])
def test_page_cuts_a_list_and_names_its_neighbours(number, items, previous, next_, last):
    page = Page.of(ITEMS, number, 3)
    assert (page.items, page.previous, page.next, page.last, page.total_pages) == (items, previous, next_, last, 3)
    assert (Page.of([], 1, 3).total_pages, Page.of([], 1, 3).last, Page.of([], 1, 3).next) == (0, 1, None)


def test_public_names_are_sorted_and_importable():
    assert simkit.__all__ == sorted(simkit.__all__)
    assert set(simkit.__all__) == {
        "Answer", "Decision", "FaultPlan", "FaultRule", "KINDS", "MIN_SIZE", "Page", "REDACTED", "ReceivedRequest",
        "Routes", "ServiceError", "SimServer", "query_int",
    }
    assert all(hasattr(simkit, name) for name in simkit.__all__)


def test_the_kit_names_no_integration():
    for source in sorted(Path(simkit.__file__).parent.glob("*.py")):
        assert "freshchat" not in source.read_text(encoding="utf-8").lower(), source.name
