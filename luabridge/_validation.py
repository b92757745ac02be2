"""Turn a Lua call's argument into checked named arguments, and word every failure for a Lua reader.

One :class:`ArgumentValidator` is built per function when it is registered: it checks the function's JSON
Schema once and prebuilds what the hot path needs. ``bind`` then runs on every call. Valid arguments of
flat schemas (scalar parameters with types, enums and bounds) pass a small precompiled check without
touching jsonschema; anything that check cannot vouch for goes to jsonschema, which finds the errors,
and this module words them in Lua's spellings (``nil``, ``true``, ``a table``), never Python's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from ._errors import ArgumentError, UsageError
from ._suggest import did_you_mean

LUA_VALUE_TAG = "\x00lua"
"""Key of the marker ``{"\\x00lua": "function"}`` standing for a Lua value JSON cannot carry."""

_STRING_SHOWN = 40  # longer strings are cut in messages: an agent needs the start, not a page of text
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGRAL_TEXT = re.compile(r"-?[0-9]+")
_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_ESCAPES.update({c: f"\\{c}" for c in [*range(32), 127] if c not in _ESCAPES})

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a table of named fields",
    "array": "a list (a sequence table)",
    "null": "nil",
}
# The fast path's Python class per JSON type; int also stands for "integer" (integral floats converted).
_FAST_TYPES = {"string": str, "boolean": bool, "integer": int, "number": float}
_FAST_KEYWORDS = frozenset(
    {"type", "description", "title", "default", "enum", "minimum", "maximum", "examples"}
)


def lua_literal(value: Any) -> str:
    """Spell a JSON-like value as Lua prints it: ``nil``, ``true``, ``5``, ``1.5``, ``"text"``, ``{...}``."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        text = f"{value:.14g}"  # Lua 5.4's LUAI_NUMFFORMAT, and its ".0" for integral floats
        return text + ".0" if _INTEGRAL_TEXT.fullmatch(text) else text
    if isinstance(value, str):
        if len(value) <= _STRING_SHOWN:
            return '"' + value.translate(_ESCAPES) + '"'
        return '"' + value[: _STRING_SHOWN - 3].translate(_ESCAPES) + f'"... ({len(value)} characters)'
    if _lua_type(value):
        return _lua_type(value)
    return "{...}"


def describe_value(value: Any) -> str:
    """Say what a script passed: ``nil``, ``true``, ``a number 5``, ``a string "x"``, ``a table``..."""
    if value is None or value is True or value is False:
        return lua_literal(value)
    if type(value) in (int, float):
        return f"a number {lua_literal(value)}"
    if isinstance(value, str):
        return f"a string {lua_literal(value)}"
    tagged = _lua_type(value)
    if tagged:
        return f"a {tagged}"
    return "a table"


def _lua_type(value: Any) -> str | None:
    """Return the Lua type a tagged marker stands for (``function``, ``thread``...), else ``None``."""
    if type(value) is dict and len(value) == 1 and LUA_VALUE_TAG in value:
        return str(value[LUA_VALUE_TAG])
    return None


def _find_lua_value(value: Any, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], str] | None:
    """Find a tagged Lua value anywhere inside ``value``; return its path and Lua type, or ``None``."""
    tagged = _lua_type(value)
    if tagged:
        return path, tagged
    items = value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    for key, item in items:
        found = _find_lua_value(item, (*path, key))
        if found:
            return found
    return None


def _types(prop: Mapping[str, Any]) -> tuple[str, ...]:
    declared = prop.get("type", ())
    return (declared,) if isinstance(declared, str) else tuple(declared)


def _expected(types: tuple[str, ...] | str) -> str:
    types = (types,) if isinstance(types, str) else types
    return " or ".join(_TYPE_WORDS.get(t, t) for t in types) or "a value"


def _spell_path(path: tuple[Any, ...] | list[Any]) -> str:
    """``('filter', 'tags', 0)`` -> ``'filter.tags[1]'``: Lua's 1-based indexes, quoted like Lua names."""
    text = str(path[0])
    for step in path[1:]:
        text += f"[{step + 1}]" if isinstance(step, int) else f".{step}"
    return f"'{text}'"


class ArgumentValidator:
    """Check one function's arguments against its JSON Schema and word failures for a Lua reader.

    ``qualified_name`` (``service.function``) starts every message. Raises :class:`UsageError` when
    ``schema`` is not a valid draft 2020-12 ``object`` schema whose ``required`` names and defaults agree
    with its ``properties``: that is a bug in the integration, found when it is registered.
    """

    def __init__(self, qualified_name: str, schema: Mapping[str, Any]) -> None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise UsageError(f"{qualified_name}: invalid parameters schema: {exc.message}") from exc
        properties = schema.get("properties", {})
        if schema.get("type") != "object" or not isinstance(properties, Mapping):
            raise UsageError(f"{qualified_name}: the parameters schema must be an object with properties")
        self.qualified_name = qualified_name
        self._properties = dict(properties)
        self._required = tuple(schema.get("required", ()))
        undeclared = [name for name in self._required if name not in self._properties]
        if undeclared:
            raise UsageError(f"{qualified_name}: required parameters missing from properties: {undeclared}")
        self._closed = schema.get("additionalProperties") is False
        self._validator = Draft202012Validator(schema)
        self._defaults = {name: p["default"] for name, p in self._properties.items() if "default" in p}
        for name, default in self._defaults.items():
            if not Draft202012Validator(self._properties[name]).is_valid(default):
                raise UsageError(f"{qualified_name}: the default of {name!r} does not match its own schema")
        self._integers = frozenset(n for n, p in self._properties.items() if "integer" in _types(p))
        self._fast = self._compile_fast(schema)
        self._example = f"{qualified_name}({example_arguments(schema)})"

    def bind(self, raw: Any, nargs: int = 1) -> dict[str, Any]:
        """Return the named arguments of a call: a new dict, defaults filled in, integral floats made ints.

        ``raw`` is the JSON-decoded first Lua argument and ``nargs`` the number of Lua arguments. Raises
        :class:`ArgumentError`, worded for a Lua reader, when the call does not fit the schema.
        """
        if type(raw) is not dict or nargs > 1 or LUA_VALUE_TAG in raw:
            raw = self._named(raw, nargs)
        if self._fast is not None:
            bound = self._bind_fast(raw)
            if bound is not None:
                return bound
        return self._bind_checked(raw)

    def _compile_fast(self, schema: Mapping[str, Any]) -> dict[str, tuple[type, Any, Any, Any]] | None:
        """Precompile a flat schema into ``{name: (class, enum, minimum, maximum)}``; ``None`` if not flat."""
        if set(schema) - {"$schema", "type", "properties", "required", "additionalProperties", "description"}:
            return None
        if not self._closed:
            return None
        plan = {}
        for name, prop in self._properties.items():
            types = _types(prop)
            enum = prop.get("enum")
            if set(prop) - _FAST_KEYWORDS or len(types) != 1 or types[0] not in _FAST_TYPES:
                return None
            if enum is not None and not all(type(v) is str for v in enum):
                return None
            plan[name] = (
                _FAST_TYPES[types[0]], None if enum is None else frozenset(enum),
                prop.get("minimum"), prop.get("maximum"),
            )
        return plan

    def _bind_fast(self, args: dict[str, Any]) -> dict[str, Any] | None:
        """Return the bound arguments if ``args`` is plainly valid, else ``None`` (jsonschema decides).

        It may refuse valid input (then the full check runs) but never accepts invalid input.
        """
        plan = self._fast
        # fast-path defaults are scalars: a shallow copy is a new value
        bound = self._defaults.copy() if self._defaults else {}
        for name, value in args.items():
            try:
                cls, enum, low, high = plan[name]
            except KeyError:
                return None
            kind = type(value)
            if kind is not cls:
                if cls is int and kind is float and value.is_integer():
                    value = int(value)
                elif not (cls is float and kind is int):
                    return None
            if enum is not None and value not in enum:
                return None
            if (low is not None and not value >= low) or (high is not None and not value <= high):
                return None
            bound[name] = value
        for name in self._required:
            if name not in args:
                return None
        return bound

    def _named(self, raw: Any, nargs: int) -> dict[str, Any]:
        """Turn a call that did not pass one table into named arguments, or say how to call."""
        if nargs > 1:
            raise ArgumentError(self._call_form(f"got {nargs} arguments"))
        if raw is None or raw == []:
            return {}
        if type(raw) is list:
            raise ArgumentError(self._call_form("got a table of positional values"))
        if len(self._required) != 1:
            raise ArgumentError(self._call_form(f"got {describe_value(raw)}"))
        return {self._required[0]: raw}

    def _call_form(self, got: str) -> str:
        # f("x") stands for f({<the required parameter> = "x"}) only when there is exactly one to stand for
        alone = f", or just its '{self._required[0]}'" if len(self._required) == 1 else ""
        like = f"like {self._example}{alone}"
        return f"{self.qualified_name} expects one table of named parameters, {like}; {got}"

    def _bind_checked(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate with jsonschema; return the bound arguments or raise with every problem worded."""
        problems: dict[str, str] = {}
        for name, value in args.items():
            found = (name in self._properties or not self._closed) and _find_lua_value(value)
            if found:
                problems[name] = self._word_lua_value(name, *found)
        checked = {k: v for k, v in args.items() if k not in problems} if problems else args
        if not problems and self._validator.is_valid(checked):
            return self._finish(checked)
        per_parameter: dict[str, list[ValidationError]] = {}
        for error in self._validator.iter_errors(checked):
            if error.path:
                per_parameter.setdefault(str(error.path[0]), []).append(error)
            elif error.validator == "required":
                for name in error.validator_value:
                    if name not in checked and name not in problems:
                        problems[name] = self._word_missing(name)
            elif error.validator == "additionalProperties":
                for name in checked:
                    if name not in self._properties:
                        problems[name] = self._word_unknown(name)
            else:
                problems[""] = f"the arguments break the schema's '{error.validator}' rule"
        for name, errors in per_parameter.items():
            problems[name] = _word_error(best_match(errors))
        raise ArgumentError(self._report(problems))

    def _finish(self, args: dict[str, Any]) -> dict[str, Any]:
        bound = {name: deepcopy(value) for name, value in self._defaults.items() if name not in args}
        bound.update(args)
        for name in self._integers & bound.keys():
            value = bound[name]
            if type(value) is float and value.is_integer():
                bound[name] = int(value)
        return bound

    def _report(self, problems: dict[str, str]) -> str:
        """One problem on the first line; several as a list, in the order of the parameters' declaration."""
        position = {name: index for index, name in enumerate(self._properties)}
        ordered = sorted(problems, key=lambda name: position.get(name, len(position)))
        if len(ordered) == 1:
            return f"{self.qualified_name}: {problems[ordered[0]]}"
        lines = "".join(f"\n- {problems[name]}" for name in ordered)
        return f"{self.qualified_name}: {len(ordered)} problems with the arguments:{lines}"

    def _word_missing(self, name: str) -> str:
        prop = self._properties[name]
        about = [_expected(_types(prop))] if _types(prop) else []
        about += [prop["description"]] if prop.get("description") else []
        return f"missing required parameter '{name}'" + (f" ({': '.join(about)})" if about else "")

    def _word_unknown(self, name: str) -> str:
        if not self._properties:
            return f"unknown parameter '{name}': {self.qualified_name} takes no parameters"
        hint = did_you_mean(name, self._properties)
        return f"unknown parameter '{name}'.{hint} Valid parameters: {', '.join(self._properties)}"

    def _word_lua_value(self, name: str, path: tuple[Any, ...], lua_type: str) -> str:
        types = _types(self._properties.get(name, {}))
        if not path and types:
            return f"parameter '{name}' must be {_expected(types)}, got a {lua_type}"
        return (
            f"parameter {_spell_path((name, *path))} cannot be a {lua_type}: "
            "only nil, booleans, numbers, strings and tables can be passed"
        )


def example_arguments(schema: Mapping[str, Any]) -> str:
    """A Lua table of sample arguments a reader can copy: the required parameters, else the first one."""
    properties = schema.get("properties", {})
    names = tuple(schema.get("required", ())) or tuple(properties)[:1]
    fields = []
    for name in names:
        key = name if _IDENTIFIER.fullmatch(name) else f"[{lua_literal(name)}]"
        fields.append(f"{key} = {sample_value(properties[name])}")
    return "{" + ", ".join(fields) + "}"


def sample_value(prop: Mapping[str, Any]) -> str:
    """A sample Lua value for a parameter: its default, first allowed value, lower bound or a placeholder."""
    if "default" in prop:
        return lua_literal(prop["default"])
    if prop.get("enum"):
        return lua_literal(prop["enum"][0])
    kind = (_types(prop) or ("string",))[0]
    if kind in ("integer", "number"):
        return lua_literal(prop.get("minimum", 1))
    return {"boolean": "true", "object": "{}", "array": "{}"}.get(kind, '"..."')


def _word_error(error: ValidationError) -> str:
    """Word one jsonschema error about a parameter (``error.path`` is not empty) for a Lua reader."""
    where = f"parameter {_spell_path(list(error.path))}"
    rule, limit, value = error.validator, error.validator_value, error.instance
    got = describe_value(value)
    if rule == "type":
        if "integer" in _types(error.schema) and type(value) is float:
            return f"{where} must be a whole number (an integer), got {lua_literal(value)}"
        return f"{where} must be {_expected(limit)}, got {got}"
    if rule == "enum":
        choices = [v for v in limit if isinstance(v, str)]
        hint = did_you_mean(value, choices, spell=lua_literal) if isinstance(value, str) else ""
        return f"{where} must be one of {', '.join(map(lua_literal, limit))}; got {got}.{hint}"
    bounds = {
        "minimum": "at least", "maximum": "at most",
        "exclusiveMinimum": "greater than", "exclusiveMaximum": "less than",
    }
    if rule in bounds:
        return f"{where} must be {bounds[rule]} {lua_literal(limit)}, got {lua_literal(value)}"
    sizes = {
        "minLength": "be at least {} characters long", "maxLength": "be at most {} characters long",
        "minItems": "have at least {} items", "maxItems": "have at most {} items",
    }
    if rule in sizes:
        return f"{where} must {sizes[rule].format(limit)}, got {got}"
    if rule == "const":
        return f"{where} must be {lua_literal(limit)}, got {got}"
    if rule == "pattern":
        return f"{where} must match the regular expression {limit}, got {got}"
    if rule == "required":
        missing = ", ".join(f"'{name}'" for name in limit if name not in value)
        return f"{where} is missing the required field {missing}"
    if rule == "additionalProperties":
        return f"{where} has a field it does not accept"
    return f"{where} breaks the schema's '{rule}' rule, got {got}"
