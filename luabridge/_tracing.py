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

# Taken once: a call would otherwise pay a tracer lookup (and an environment read) each time. The API's
# proxy tracer follows a provider the host installs later.
_TRACER = trace.get_tracer("luabridge") if trace is not None else None


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def end(self) -> None:
        pass


_NO_SPAN = _NoSpan()


def enabled() -> bool:
    """Whether the host installed a tracer provider, so that spans are worth making (checked per run)."""
    return trace is not None and not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def start_span(name: str, attributes: dict[str, Any]) -> Any:
    """A started span (end it with ``.end()``) named ``name`` with ``attributes`` (no value ``None``),
    child of the current span; a span that does nothing without the API."""
    if _TRACER is None:
        return _NO_SPAN
    return _TRACER.start_span(name, attributes=attributes)


def finish_span(span: Any, **attributes: Any) -> None:
    """Set ``attributes`` (those not ``None``) on ``span`` and end it."""
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)
    span.end()
