"""The result shapes (``results.py``) against the data: the simulator's answers and the client's results fit
them exactly, every field a page lists is one the simulator returns, the reference's examples read fields
that are there and meaningful, and every promise of a function's description is kept or withdrawn."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from integrations.freshchat import integration as FRESHCHAT
from integrations.freshchat.client import FreshchatClient
from integrations.freshchat.results import ADDED, RESULTS
from integrations.freshchat.simdata import REFERENCE_IDS, build_dataset
from integrations.freshchat.simulator import Simulator
from integrations.freshchat.vocabulary import STATUS_FILTERS
from luabridge import Account, Bridge, CallContext, Secret
from luabridge._docs import DocSet, _result_rows

DOCS = DocSet([FRESHCHAT], {"freshchat": ["default"]}, guides={})
DATA = build_dataset(0)  # what Simulator(seed=0) serves
UNASSIGNED = next(c["conversation_id"] for c in DATA.conversations if "assigned_group_id" not in c
                  and "assigned_agent_id" not in c)
IN_A_GROUP = next(c["conversation_id"] for c in DATA.conversations if "assigned_group_id" in c)
WITHOUT_LAST_NAME = next(a["id"] for a in DATA.agents if "last_name" not in a)
WITH_PHONE = next(a["id"] for a in DATA.agents if "phone" in a)
# Arguments that make each function answer with as much of its shape as the simulator has: the first
# call's answer is the whole list (or the reference's object), the others add pages with both links.
CALLS = {
    "list_conversations": [{"page": 1, "per_page": 100}, {"page": 2, "per_page": 100},
                           {"page": 3, "per_page": 100}],
    "get_conversation": [{"id": REFERENCE_IDS["conversation"]}, {"id": UNASSIGNED}, {"id": IN_A_GROUP}],
    "create_conversation": [{"user_id": "user-456", "initial_message": "Hello", "channel_id": "channel-789"}],
    "list_agents": [{"page": 1, "per_page": 100}, {"page": 2, "per_page": 10}],
    "get_agent": [{"id": REFERENCE_IDS["agent"]}, {"id": WITHOUT_LAST_NAME}, {"id": WITH_PHONE}],
    "list_groups": [{"page": 1, "per_page": 50}, {"page": 2, "per_page": 2}],
    "get_current_user": [{}],
}
# Fields a page lists that the simulator cannot show for a function: a new conversation is not assigned yet.
NEVER_SIMULATED = {"create_conversation": {"assigned_agent_id", "assigned_group_id"}}
# The simulator's routes behind each function (its raw answers, before the client adds anything).
WIRE = {
    "list_conversations": ("GET", "/conversations", {"items_per_page": 100}),
    "get_conversation": ("GET", f"/conversations/{REFERENCE_IDS['conversation']}", {}),
    "list_agents": ("GET", "/agents", {"items_per_page": 100}),
    "get_agent": ("GET", f"/agents/{REFERENCE_IDS['agent']}", {}),
    "list_groups": ("GET", "/groups", {}),
    "get_current_user": ("GET", "/accounts/configuration", {}),
}


def strict(schema: dict[str, Any], *, wire: bool = False) -> dict[str, Any]:
    """``schema`` refusing fields it does not list; with ``wire``, without the fields the client adds."""
    schema = copy.deepcopy(schema)

    def tighten(node: Any) -> None:
        if not isinstance(node, dict):
            return
        properties = node.get("properties")
        if properties:
            if wire:
                for name in [n for n, prop in properties.items() if ADDED in prop]:
                    del properties[name]
                    node["required"] = [r for r in node.get("required", []) if r != name]
            node["additionalProperties"] = False
            for prop in properties.values():
                tighten(prop)
        tighten(node.get("items"))

    tighten(schema)
    return schema


def paths_in(value: Any, prefix: str = "") -> Iterator[str]:
    """Every field path present in ``value``, in the pages' spelling (``agents[i].email``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{prefix}{key}"
            yield from paths_in(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            yield from paths_in(item, f"{prefix[:-1]}[i].")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=0) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def results(sim) -> dict[str, list[Any]]:
    """What the client returns for each call of :data:`CALLS`, by function."""
    client = FreshchatClient(Account("freshchat", "default", sim.url, Secret(sim.token)))
    ctx = CallContext(client.account, deadline=time.monotonic() + 30)
    try:
        return {name: [getattr(client, name)(args, ctx) for args in calls] for name, calls in CALLS.items()}
    finally:
        client.close()


@pytest.mark.parametrize("name", list(CALLS))
def test_the_clients_results_fit_their_shape_exactly(results, name):
    for result in results[name]:
        jsonschema.validate(result, strict(RESULTS[name]))


@pytest.mark.parametrize("name", list(WIRE))
def test_the_simulators_answers_fit_the_shape_without_the_clients_fields(sim, name):
    import requests

    method, path, query = WIRE[name]
    answer = requests.request(method, sim.url + path, params=query, timeout=5,
                              headers={"Authorization": f"Bearer {sim.token}"}).json()
    jsonschema.validate(answer, strict(RESULTS[name], wire=True))


def test_the_simulators_created_conversation_fits_the_shape_without_the_clients_fields():
    import requests

    with Simulator(seed=0) as sim:
        body = {"users": [{"id": "user-456"}], "messages": [
            {"message_parts": [{"text": {"content": "hi"}}], "actor_type": "user", "actor_id": "user-456"}]}
        answer = requests.post(f"{sim.url}/conversations", json=body, timeout=5,
                               headers={"Authorization": f"Bearer {sim.token}"}).json()
    jsonschema.validate(answer, strict(RESULTS["create_conversation"], wire=True))


@pytest.mark.parametrize("name", list(CALLS))
def test_every_field_a_page_lists_is_one_the_simulator_returns(results, name):
    rows = list(_result_rows(RESULTS[name], ""))
    listed = {path for path, _, _ in rows}
    # An object the page describes in words only (a link's {href, rel, type}) is not listed field by field.
    opaque = tuple(f"{path}." for path, prop, _ in rows if prop.get("type") == "object" and not prop["properties"])
    returned = {path for result in results[name] for path in paths_in(result) if not path.startswith(opaque)}
    assert listed - returned - NEVER_SIMULATED.get(name, set()) == set(), "listed on the page but never returned"
    assert returned - listed == set(), "returned but not on the page"


@pytest.mark.parametrize("fn", FRESHCHAT.functions, ids=lambda fn: fn.name)
def test_every_function_page_shows_its_result_fields(fn):
    page = DOCS.read(f"integrations.freshchat.{fn.name}")
    section = page.partition("\n## Result\n")[2].partition("\n## ")[0]
    shown = re.findall(r"^\| `([^`]+)` \|", section, re.M)
    assert shown == [path for path, _, _ in _result_rows(fn.result, "")]
    assert fn.result["description"] in section


# The variable each of the reference's examples reads its fields from, and where that sits in a result.
EXAMPLE_VARIABLES = {"result": "", "conv": "conversations[i].", "agent": "agents[i].", "group": "groups[i]."}


def fields_the_examples_read() -> list[tuple[str, str, bool]]:
    """``(function, path, guarded)`` for every ``variable.field`` the reference's examples read; a guarded
    one is read as ``(x.field or ...)``, so the example expects it may be absent."""
    found = []
    for fn in FRESHCHAT.functions:
        for example in fn.examples:
            for variable, field, guard in re.findall(r"\b(result|conv|agent|group)\.(\w+)\b( or)?", example):
                if variable == "result" and field in ("conversations", "agents", "groups"):
                    continue  # the list itself; its items are read as conv, agent, group
                found.append((fn.name, EXAMPLE_VARIABLES[variable] + field, bool(guard)))
    return sorted(set(found))


def values_at(result: Any, path: str) -> list[Any]:
    """The values at ``path`` (``agents[i].status``) in ``result``; a missing field gives ``None``."""
    values = [result]
    for part in path.split("."):
        if part.endswith("[i]"):
            values = [item for value in values for item in value[part[:-3]]]
        else:
            values = [value.get(part) for value in values]
    return values


def test_the_examples_read_these_fields():
    read = fields_the_examples_read()
    assert ("list_agents", "agents[i].status", True) in read
    assert ("list_conversations", "conversations[i].id", False) in read
    assert ("get_agent", "last_name", True) in read
    assert len(read) == 16


@pytest.mark.parametrize(("name", "path", "guarded"), fields_the_examples_read())
def test_every_field_the_examples_read_is_there_and_meaningful(results, name, path, guarded):
    values = [value for result in results[name] for value in values_at(result, path)]
    present = [value for value in values if value is not None]
    assert present and all(isinstance(value, str) and value for value in present), (path, values[:3])
    if not guarded:  # read without a fallback: it must always be there
        assert present == values, (path, values[:3])
    if path == "agents[i].status":  # not "offline" for everyone, as Freshchat's own data would read
        assert set(values) == {"available", "unavailable", "offline"}


def test_agent_status_agrees_with_freshchats_availability(results):
    for agent in results["list_agents"][0]["agents"]:
        if not agent["login_status"]:
            assert agent["status"] == "offline"
        else:
            assert agent["status"] == agent["availability_status"].lower()


@pytest.mark.parametrize("word", list(STATUS_FILTERS))
def test_each_filter_word_selects_the_statuses_its_page_says(simulator, word):
    sim = simulator  # one of its own: the module's simulator holds a created conversation
    page = DOCS.read("integrations.freshchat.list_conversations")
    said = ", ".join(f"`{status}`" for status in STATUS_FILTERS[word])
    assert f'`"{word}"`: {said}' in page
    with Bridge({"freshchat": {"default": Account("freshchat", "default", sim.url, Secret(sim.token))}},
                isolation=False) as bridge:
        result = bridge.run(f'return app.integrations.freshchat.list_conversations({{status = "{word}"}})'
                            ".pagination.total_items")
    assert result.ok, result.report()
    assert result.value == sum(c["status"] in STATUS_FILTERS[word] for c in sim.dataset.conversations)


# Each promise of a function's description: kept (a field shows it) or withdrawn (its page says so).
PROMISES = [
    ("get_conversation", "including messages", "kept", "messages"),
    ("get_conversation", "participants", "kept", "`user_id` (the customer)"),
    ("list_agents", "availability status", "kept", "agents[i].availability_status"),
    ("get_agent", "availability", "kept", "status"),
    ("get_agent", "assigned conversations", "withdrawn",
     "Assigned conversations are not included: Freshchat has no endpoint"),
    ("list_conversations", "paginated results", "kept", "pagination.total_items"),
    ("get_current_user", "identifying the connected account", "kept", "account_id"),
]


@pytest.mark.parametrize(("name", "promise", "how", "evidence"), PROMISES)
def test_every_promise_is_kept_or_withdrawn(results, name, promise, how, evidence):
    fn = FRESHCHAT.function(name)
    assert promise in fn.description
    page = DOCS.read(f"integrations.freshchat.{name}")
    assert evidence in page
    if how == "kept" and evidence in {path for path, _, _ in _result_rows(fn.result, "")}:
        assert all(values_at(result, evidence) for result in results[name])


def test_get_conversation_keeps_its_promise_of_messages(sim, results):
    conversation = results["get_conversation"][0]
    assert conversation["messages"] == sim.dataset.messages[REFERENCE_IDS["conversation"]]


def test_absent_values_are_absent_not_null(sim):
    conversations, agents = sim.dataset.conversations, sim.dataset.agents
    assert any("assigned_agent_id" not in c for c in conversations)
    assert any("last_name" not in a for a in agents)
    assert not [key for item in conversations + agents for key, value in item.items() if value is None]


@pytest.mark.parametrize(("query", "pages"), [
    ("availability", {"integrations.freshchat.list_agents", "integrations.freshchat.get_agent"}),
    ("total_items", {"integrations.freshchat.list_conversations", "integrations.freshchat.list_agents",
                     "integrations.freshchat.list_groups"}),
    ("inbox", {"integrations.freshchat.list_conversations", "integrations.freshchat.get_conversation"}),
])
def test_search_finds_the_function_pages_by_their_result_fields(query, pages):
    with Bridge(integrations=["integrations.freshchat"], isolation=False) as bridge:
        hits = [hit["page"] for hit in bridge.docs.search(query)]
    # The function pages come first; the examples guide, which also speaks of them, may come among them.
    assert pages <= set(hits[:len(pages) + 1]), hits
