"""OpenTelemetry spans for runs and integration calls, through ``opentelemetry-api`` only.

The API is a no-op until the host installs and configures an SDK, and without the API installed at all
these spans cost nothing. A span names what was called, which account, its effect, outcome and HTTP
status: never a token, never an argument's value.
"""

from __future__ import annotations

from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # the API is an optional dependency (luabridge[serve])
    trace = None  # type: ignore[assignment]


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def end(self) -> None:
        pass


def start_span(name: str, **attributes: Any) -> Any:
    """A started span (end it with ``.end()``) named ``name`` with ``attributes`` whose value is not
    ``None``, child of the current span; a span that does nothing without the API."""
    if trace is None:
        return _NoSpan()
    return trace.get_tracer("luabridge").start_span(
        name, attributes={key: value for key, value in attributes.items() if value is not None})


def finish_span(span: Any, **attributes: Any) -> None:
    """Set ``attributes`` (those not ``None``) on ``span`` and end it."""
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)
    span.end()
