"""OpenTelemetry spans of integration calls: function, account, effect, outcome and status, never a secret."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from luabridge._demo import demo  # noqa: E402


def test_each_call_is_a_span_with_its_facts_and_no_values():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with demo(integrations=["integrations.freshchat"], isolation=False) as bridge:
        token = bridge.catalog.accounts["freshchat"]["default"].token.reveal()
        result = bridge.run('app.integrations.freshchat.list_agents({per_page = 7}) '
                            'return app.integrations.freshchat.get_agent({agent_id = "secret-value-42"})')
    calls = [span for span in exporter.get_finished_spans() if span.name == "luabridge.call"]
    assert [dict(span.attributes) for span in calls] == [
        {"luabridge.function": "freshchat.list_agents", "luabridge.account": "default", "luabridge.effect": "read",
         "luabridge.outcome": "succeeded", "http.response.status_code": 200},
        {"luabridge.function": "freshchat.get_agent", "luabridge.account": "default", "luabridge.effect": "read",
         "luabridge.outcome": result.calls[1].outcome},
    ]
    assert result.calls[1].outcome == "not_sent" and result.calls[1].http_status is None
    text = repr([(span.name, dict(span.attributes)) for span in exporter.get_finished_spans()])
    assert token not in text and "secret-value-42" not in text
