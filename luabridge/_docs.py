"""The documentation pages a script reads with ``lua_read_doc`` and a shell with ``luabridge docs``.

Pages are plain markdown strings, named with dots:

- ``<guide>``: a guide from the ``luabridge_docs`` package (the repository's ``docs/`` folder), one per
  top-level ``*.md`` file, named by its stem (files in subfolders are for human readers, not pages);
- ``integrations``: the integrations available;
- ``integrations.<name>``: the integration's reference, exactly as it declares it;
- ``integrations.<name>.<function>``: one function, generated from its :class:`Function` (the same data
  that drives validation, and its ``result`` shape, so the two cannot drift); the prefixed name and a
  leading ``app.`` also work;
- ``integrations.<name>.<page>``: a guide the integration ships;
- ``integrations.<name>.<alias>``: an account namespace (``default`` always exists).

When names collide, a function wins over an integration's guide, and that over an account; generated pages
win over guides from ``docs/``.

A page is served without the test markers of its code blocks (```` ```lua norun ```` is served as
```` ```lua ````): they tell the docs' tests which blocks to run, not readers. :meth:`DocSet.source` gives a
page with its markers.

Every method takes any text (NUL, lone surrogates, megabytes of it) and answers data or a
:class:`LookupFailure` quickly: an unknown name longer than :data:`MAX_MATCHED_NAME` gets no suggestions,
and a search reads only the first :data:`MAX_QUERY_WORDS` words of a query's first :data:`MAX_QUERY_CHARS`
characters.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from ._errors import LookupFailure
from ._registry import Function, Integration
from ._suggest import ranked
from ._validation import example_arguments, lua_literal, sample_value

MAX_MATCHED_NAME = 200  # fuzzy matching costs the product of the lengths: no page name is nearly this long
MAX_QUERY_CHARS = 1000
MAX_QUERY_WORDS = 20
_LIST_ALL_UP_TO = 10  # an unknown-page message lists every page up to this many, else the closest ones
_SHOWN = 80  # the characters of an unknown name a message quotes
_SNIPPET = 160
_WORD = re.compile(r"\w+")
# The info-string words that only the docs' tests read (tests/test_docs_examples.py); stripped when served.
TEST_MARKERS = ("norun",)
_MARKED_FENCE = re.compile(rf"^( {{0,3}}(?:`{{3,}}|~{{3,}})\w+)[ \t]+(?:{'|'.join(TEST_MARKERS)})[ \t]*$", re.M)
# Where a sentence may end: a stop and a space, but not after an abbreviation such as "e.g." or "i.e.".
_SENTENCE_END = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<=[.!?])\s")


def _guides_from_package() -> dict[str, str]:
    """Every top-level ``*.md`` file of the ``luabridge_docs`` package, by file stem."""
    try:
        roots = [resources.files("luabridge_docs")]
    except NotADirectoryError:
        # docs/ is a namespace package; under a setuptools editable install its __path__ also holds a
        # placeholder entry that importlib.resources rejects (Python 3.11), so read the real folders.
        search_path = importlib.import_module("luabridge_docs").__path__
        roots = [Path(entry) for entry in search_path if Path(entry).is_dir()]
    return {
        entry.name[: -len(".md")]: entry.read_text(encoding="utf-8")
        for root in roots
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(".md")
    }


def _title(markdown: str) -> str | None:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return None


def _first_sentence(markdown: str) -> str:
    """The first sentence of the first paragraph of prose, whole even when it wraps over several lines, to
    describe a guide in the index."""
    paragraph: list[str] = []
    for line in markdown.splitlines():
        text = line.strip()
        if text and not text.startswith(("#", "|", "```", "~~~", "-", "*", ">")):
            paragraph.append(text)
        elif paragraph:
            break
    return _SENTENCE_END.split(" ".join(paragraph), maxsplit=1)[0]


def served(markdown: str) -> str:
    """``markdown`` as readers get it: code fences without the tests' markers (:data:`TEST_MARKERS`)."""
    return _MARKED_FENCE.sub(r"\1", markdown)


class DocSet:
    """The pages of a set of integrations and guides, with lookup, listing and search.

    ``accounts`` maps an integration name to its configured account aliases; ``guides`` maps a page
    name to markdown and defaults to the guides shipped in ``luabridge_docs``.
    """

    def __init__(
        self,
        integrations: Sequence[Integration],
        accounts: Mapping[str, Sequence[str]],
        guides: Mapping[str, str] | None = None,
    ) -> None:
        self._integrations = {integration.name: integration for integration in integrations}
        # "default" always exists: the bare namespace and ``.default`` use the default account
        self._aliases = {
            name: ["default", *sorted(set(accounts.get(name, ())) - {"default"})]
            for name in self._integrations
        }
        # page name -> (one-line description, renderer); rendered text is cached on first read
        self._pages: dict[str, tuple[str, Callable[[], str]]] = {}
        self._rendered: dict[str, str] = {}
        self._served: dict[str, str] = {}
        self._add_pages(_guides_from_package() if guides is None else guides)
        self._folded = {name.lower(): name for name in self._pages}

    def read(self, page: str) -> str:
        """Return the text of ``page`` as served; raises :class:`LookupFailure` listing what exists (and the
        closest names) when unknown."""
        name = self._resolve(page)
        if name is None:
            raise LookupFailure(self._unknown(page))
        if name not in self._served:
            self._served[name] = served(self.source(name))
        return self._served[name]

    def source(self, page: str) -> str:
        """Return the text of ``page`` as written, with the test markers of its code blocks; raises
        :class:`LookupFailure` like :meth:`read`."""
        name = self._resolve(page)
        if name is None:
            raise LookupFailure(self._unknown(page))
        if name not in self._rendered:
            self._rendered[name] = self._pages[name][1]()
        return self._rendered[name]

    def list(self, prefix: str | None = None) -> list[str]:
        """Return the sorted names of the pages starting with ``prefix`` (all pages without one)."""
        start = _strip_app((prefix or "").lower())
        return sorted(name for name in self._pages if name.lower().startswith(start))

    def search(self, query: str, limit: int = 10) -> list[dict[str, str]]:
        """Return up to ``limit`` pages matching ``query``, best first, as ``{"page", "title", "snippet"}``.

        Matching is case-insensitive and by substring. Pages matching more of the query's words rank
        first; then a word counts most in the page name, less in the title, least in the text. Only the
        first :data:`MAX_QUERY_WORDS` distinct words within the first :data:`MAX_QUERY_CHARS` characters
        count; the rest of a longer query is ignored.
        """
        found = (word.lower() for word in _WORD.findall(query[:MAX_QUERY_CHARS]))
        words = list(dict.fromkeys(found))[:MAX_QUERY_WORDS]
        ranked = []
        for name in self._pages:
            text = self.read(name)
            title = _title(text) or name
            lowered_name, lowered_title, lowered = name.lower(), title.lower(), text.lower()
            matched, score = 0, 0.0
            for word in words:
                hits = lowered.count(word)
                if hits or word in lowered_name:
                    matched += 1
                    score += 5 * (word in lowered_name) + 3 * (word in lowered_title) + math.log1p(hits)
            if matched:
                ranked.append((-matched, -score, name, title, text))
        ranked.sort()
        return [
            {"page": name, "title": title, "snippet": _snippet(text, words)}
            for _, _, name, title, text in ranked[: max(limit, 0)]
        ]

    def index(self) -> str:
        """Return a readable listing of every page with a one-line description."""
        names = self.list()
        width = max(map(len, names), default=0)
        guides = [n for n in names if n != "integrations" and not n.startswith("integrations.")]
        generated = [n for n in names if n not in guides]
        lines = [
            "# Documentation",
            "",
            'Read a page with lua_read_doc("<page>") in Lua, or `luabridge docs <page>` in a shell.',
            'List pages with lua_list_docs([prefix]); search them with lua_search_docs("<words>").',
        ]
        for heading, group in (("Guides", guides), ("Integrations", generated)):
            if group:
                lines += ["", f"## {heading}", ""]
                lines += [f"{n.ljust(width)}  {self._pages[n][0]}".rstrip() for n in group]
        example = next((i for i in self._integrations.values() if i.functions), None)
        if example:
            short = f"integrations.{example.name}.{example.functions[0].name}"
            prefixed = f"integrations.{example.name}.{example.prefix}{example.functions[0].name}"
            lines += ["", f"Function pages also answer to their prefixed names ({prefixed})",
                      f"and with a leading `app.` (app.{short})."]
        return "\n".join(lines) + "\n"

    def _add_pages(self, guides: Mapping[str, str]) -> None:
        self._pages["integrations"] = ("The integrations and their namespaces.", self._integrations_page)
        for integration in self._integrations.values():
            base = f"integrations.{integration.name}"
            counts = _operation_counts(integration)
            self._pages[base] = (
                f"{integration.title}: the full reference ({counts}).",
                lambda integration=integration: integration.reference,
            )
            for fn in integration.functions:
                self._pages[f"{base}.{fn.name}"] = (
                    fn.summary, lambda integration=integration, fn=fn: self._function_page(integration, fn)
                )
            for page, text in integration.guides.items():
                self._pages.setdefault(f"{base}.{page}", (_first_sentence(text), lambda text=text: text))
            for alias in self._aliases[integration.name]:
                which = "the default account." if alias == "default" else f"account '{alias}'."
                self._pages.setdefault(f"{base}.{alias}", (
                    f"Account namespace: {which}",
                    lambda integration=integration, alias=alias: self._account_page(integration, alias),
                ))
        for page, text in guides.items():
            self._pages.setdefault(page, (_first_sentence(text), lambda text=text: text))

    def _resolve(self, page: str) -> str | None:
        """The page ``page`` names, in any case, with or without ``app.``, functions also by prefixed name."""
        wanted = _strip_app(page.strip().lower())
        if wanted in self._folded:
            return self._folded[wanted]
        parts = wanted.split(".")
        if len(parts) != 3 or parts[0] != "integrations" or parts[1] not in self._integrations:
            return None
        fn = self._integrations[parts[1]].function(parts[2])
        return f"integrations.{parts[1]}.{fn.name}" if fn else None

    def _unknown(self, page: str) -> str:
        names = sorted(self._pages)
        wanted = _strip_app(page.strip().lower())
        close = _closest(wanted, names) if len(wanted) <= MAX_MATCHED_NAME else []
        message = f"Unknown doc page {_quoted(page)}."
        if close:
            message += f" Did you mean: {', '.join(close)}?"
        if len(names) <= _LIST_ALL_UP_TO:
            return message + f" Pages: {', '.join(names)}."
        if not close:
            message += f" Start with: {', '.join(n for n in names if n.count('.') < 2)}."
        return message + f" lua_list_docs() lists all {len(names)} pages."

    def _integrations_page(self) -> str:
        lines = ["# Integrations", ""]
        if not self._integrations:
            lines.append("No integrations are installed.")
        for name, integration in self._integrations.items():
            lines += [
                f"## {integration.title}",
                "",
                f"- Namespace: `app.integrations.{name}` ({_operation_counts(integration)})",
                f"- Accounts: {', '.join(self._aliases[name])}",
                f'- Reference: lua_read_doc("integrations.{name}")',
                "",
            ]
        return "\n".join(lines).rstrip("\n") + "\n"

    def _function_page(self, integration: Integration, fn: Function) -> str:
        namespace = f"app.integrations.{integration.name}"
        schema = fn.parameters
        properties, required = schema.get("properties", {}), schema.get("required", ())
        arguments = example_arguments(schema)
        operation = "read (it only reads data)" if fn.operation == "read" else (
            "write (it changes data; a host that allows only reads refuses it with a permission error)"
        )
        lines = [f"# {integration.name}.{fn.name}", "", fn.summary, "", fn.description, "",
                 f"Operation: {operation}.", "", "## Parameters", ""]
        if properties:
            lines += ["| Name | Type | Required | Description |", "|------|------|----------|-------------|"]
            for name, prop in properties.items():
                flag = "yes" if name in required else "no"
                lines.append(f"| `{name}` | {_type_name(prop)} | {flag} | {_describe_parameter(prop)} |")
        else:
            lines.append("None.")
        if fn.result is not None:
            lines += ["", *_result_section(fn.result)]
        others = [alias for alias in self._aliases[integration.name] if alias != "default"] or ["<account>"]
        lines += ["", "## Calling it", "", "```lua norun",
                  f"{namespace}.{fn.name}({arguments})",
                  f"{namespace}.{integration.prefix}{fn.name}({arguments})  -- the same, prefixed name"]
        if len(required) == 1:  # the positional shortcut exists only then (see _validation.py)
            alone = sample_value(properties[required[0]])
            lines.append(f"{namespace}.{fn.name}({alone})  -- just the '{required[0]}'")
        elif not required:
            lines.append(f"{namespace}.{fn.name}()  -- the same as passing {{}}")
        lines.append(f"{namespace}.default.{fn.name}({arguments})  -- the default account, explicitly")
        lines += [f"{namespace}.{alias}.{fn.name}({arguments})  -- the account '{alias}'" for alias in others]
        lines += ["```", "", "Arguments are checked against the parameters before anything is sent."]
        if fn.examples:
            lines += ["", "## Examples" if len(fn.examples) > 1 else "## Example"]
            for example in fn.examples:
                lines += ["", "```lua", example.rstrip("\n"), "```"]
        return "\n".join(lines) + "\n"

    def _account_page(self, integration: Integration, alias: str) -> str:
        namespace = f"app.integrations.{integration.name}"
        if alias == "default":
            which = (f"`{namespace}.default` uses the default account, exactly like `{namespace}` itself; "
                     "write it to make a script's choice of account explicit.")
        else:
            which = f"`{namespace}.{alias}` uses the account configured as '{alias}'."
        lines = [
            f"# {integration.title} account '{alias}'", "", which,
            "Every function works the same under it; only the credentials differ.", "",
            "```lua norun", f"{namespace}.{alias}.<function>({{...}})", "```", "",
            f"Configured accounts: {', '.join(self._aliases[integration.name])}.", "", "## Functions", "",
        ]
        lines += [f"- `{fn.name}` ({fn.operation}): {fn.summary}" for fn in integration.functions]
        return "\n".join(lines) + "\n"


def _quoted(name: str) -> str:
    """``name`` in quotes, fit for a message: unprintable characters escaped, cut after :data:`_SHOWN`."""
    escaped = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name[:_SHOWN])
    return f"'{escaped}'" if len(name) <= _SHOWN else f"'{escaped}...' ({len(name)} characters)"


def _strip_app(name: str) -> str:
    return name[len("app."):] if name.startswith("app.") else name


def _operation_counts(integration: Integration) -> str:
    writes = sum(fn.operation == "write" for fn in integration.functions)
    total = len(integration.functions)
    return f"{total} function{'s' * (total != 1)}: {total - writes} read, {writes} write"


def _type_name(prop: Mapping) -> str:
    """A schema's type as a table cell: ``string``, ``integer or string``, ``array of object``."""
    types = prop.get("type", "any")
    text = types if isinstance(types, str) else " or ".join(types)
    items = prop.get("items")
    if text == "array" and isinstance(items, Mapping) and "type" in items:
        text += f" of {_type_name(items)}"
    return text


def _result_section(schema: Mapping) -> list[str]:
    """The "Result" section of a function page: the shape's description, then one row per field, nested
    fields by their Lua path (``pagination.total_items``, ``agents[i].email``)."""
    lines = ["## Result", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    rows = list(_result_rows(schema, ""))
    if not rows:
        return lines + ["Not described further."]
    lines += ["A field whose \"Always\" column says no may be absent (nil in Lua).", "",
              "| Field | Type | Always | Description |", "|-------|------|--------|-------------|"]
    for path, prop, always in rows:
        text = prop.get("description", "")
        choices = [str(value) for value in prop.get("enum", ())]
        if choices and not all(choice in text for choice in choices):
            text = f"{text.rstrip('.')}. One of {', '.join(f'`{choice}`' for choice in choices)}.".lstrip(". ")
        cell = text.replace("|", "\\|")
        lines.append(f"| `{path}` | {_type_name(prop)} | {'yes' if always else 'no'} | {cell} |")
    return lines


def _result_rows(schema: Mapping, prefix: str):
    """``(path, property schema, always there)`` for each field of an object schema, depth first."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, prop, name in required
        items = prop.get("items") if prop.get("type") == "array" else None
        if isinstance(items, Mapping) and items.get("properties"):
            yield from _result_rows(items, f"{path}[i].")
        elif prop.get("properties"):
            yield from _result_rows(prop, f"{path}.")


def _describe_parameter(prop: Mapping) -> str:
    """The description cell: the parameter's own words, then the schema's default, choices and bounds.

    A default or a list of choices the description already states word for word is not repeated.
    """
    text = prop.get("description", "")
    facts = []
    if "default" in prop and f"default: {lua_literal(prop['default'])}" not in text.lower():
        facts.append(f"default `{lua_literal(prop['default'])}`")
    if "enum" in prop and not all(lua_literal(value) in text for value in prop["enum"]):
        facts.append("one of " + ", ".join(f"`{lua_literal(value)}`" for value in prop["enum"]))
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        facts.append(f"from {lua_literal(low)} to {lua_literal(high)}")
    elif low is not None or high is not None:
        facts.append(f"at least {lua_literal(low)}" if high is None else f"at most {lua_literal(high)}")
    if facts:
        sentence = ", ".join(facts)
        sentence = sentence[0].upper() + sentence[1:] + "."
        text = f"{text.rstrip('.')}. {sentence}" if text else sentence
    return text.replace("|", "\\|")


def _closest(name: str, names: list[str]) -> list[str]:
    """The page names most like ``name``: those it is the end of (``crm`` for
    ``integrations.crm``), else its siblings by last part if any is close, else names whose last as
    many parts are close, else by whole name.

    Whole names share long prefixes (``integrations.x.``), which would make every sibling look close.
    """
    ends = sorted((n for n in names if n.lower().endswith("." + name)), key=len)
    if name and ends:
        return ends[:3]
    parent, _, leaf = name.rpartition(".")
    depth = name.count(".") + 1
    split = {n: n.lower().rpartition(".") for n in names}
    siblings = {n: parts[2] for n, parts in split.items() if parent and parts[0] == parent}
    tails = {n: ".".join(n.lower().split(".")[-depth:]) for n in names if n.count(".") >= depth}
    for pool, wanted in ((siblings, leaf), (tails, name), ({n: n.lower() for n in names}, name)):
        pages: dict[str, list[str]] = {}
        for page, text in pool.items():
            pages.setdefault(text, []).append(page)
        scored = sorted((-ratio, page) for ratio, text in ranked(wanted, pages, limit=len(pages))
                        for page in pages[text])
        if scored:
            cutoff = -scored[0][0] - 0.1  # only the clear favourites, not every near miss
            return [page for ratio, page in scored[:3] if -ratio >= cutoff]
    return []


def _snippet(text: str, words: list[str]) -> str:
    """The line that holds the most query words, cut to a short window around the first of them."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    best = max(lines, key=lambda line: sum(word in line.lower() for word in words))
    hits = [best.lower().find(word) for word in words if word in best.lower()]
    start = max(min(hits, default=0) - _SNIPPET // 4, 0)
    cut = best[start : start + _SNIPPET]
    return ("..." if start else "") + cut + ("..." if start + _SNIPPET < len(best) else "")
