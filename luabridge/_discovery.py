"""Which integrations a bridge offers when the host does not list them: the one door for every integration.

An installed distribution registers an integration with an entry point in the group
:data:`ENTRY_POINT_GROUP`, naming a module whose ``integration`` is a :class:`~luabridge.Integration` or the
object itself (``name = "package.module"`` or ``name = "package.module:attribute"``); luabridge's own
integrations are registered the same way in its ``pyproject.toml``. A user adds modules that are importable
but not registered, such as one file on ``sys.path``, with ``$LUABRIDGE_INTEGRATIONS`` (comma-separated) or
the command line's ``--integration MODULE``. Every reference goes through
:func:`~luabridge._registry.load_integration`; a reference that cannot be loaded, or two integrations with one
name, is an error naming where the reference came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points

from ._errors import IntegrationError, LuabridgeError
from ._registry import Integration, load_integration

ENTRY_POINT_GROUP = "luabridge.integrations"
ENVIRONMENT_VARIABLE = "LUABRIDGE_INTEGRATIONS"


def discover_integrations(
    extra: Sequence[str] = (), *, environ: Mapping[str, str] | None = None
) -> list[Integration]:
    """Every registered integration, then those named in ``$LUABRIDGE_INTEGRATIONS``, then ``extra``.

    A module named twice is loaded once. Raises :class:`~luabridge.UsageError` for a module that cannot be
    imported, and :class:`~luabridge.IntegrationError` for one without an ``integration`` or for two
    integrations with one name.
    """
    environ = os.environ if environ is None else environ
    references = {}  # reference -> where it was named; the first place wins
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name):
        distribution = f" of {point.dist.name}" if point.dist is not None else ""
        references.setdefault(point.value, f"entry point {point.name!r}{distribution} in {ENTRY_POINT_GROUP}")
    for name in environ.get(ENVIRONMENT_VARIABLE, "").split(","):
        if name.strip():
            references.setdefault(name.strip(), f"${ENVIRONMENT_VARIABLE}")
    for name in extra:
        references.setdefault(name, "--integration")
    return unique_by_name(_load(reference, source) for reference, source in references.items())


def _load(reference: str, source: str) -> Integration:
    try:
        return load_integration(reference)
    except LuabridgeError as exc:
        raise type(exc)(f"{source}: {exc}") from exc


def unique_by_name(integrations: Iterable[Integration]) -> list[Integration]:
    """``integrations`` as a list; raises :class:`~luabridge.IntegrationError` when two share a name."""
    seen: dict[str, Integration] = {}
    for integration in integrations:
        other = seen.setdefault(integration.name, integration)
        if other is not integration:
            raise IntegrationError(
                f"two integrations are named {integration.name!r}: {_where(other)} and {_where(integration)}"
            )
    return list(seen.values())


def _where(integration: Integration) -> str:
    return f"module {integration.module!r}" if integration.module else "an Integration object"
