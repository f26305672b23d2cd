"""Compile a declarative field map (``mappings/<syntax>.toml``) into lookups, once per process.

Reads: the TOML file shipped in the ``mappings`` package. Writes: nothing. A compiled map turns a parsed
document into ``RawFields``: the texts exactly as the document states them (stripped), nothing converted.

Plain child paths (``a:b/a:c`` or ``a:b/@attr``, most of the map) compile to tuples of qualified names,
merged at compile time into one prefix tree per mapping (and one for the line items): extraction walks that
tree once per document (``iterchildren(tag)``, in C), so every shared prefix is resolved once and each plain
path is then a dictionary lookup. Anything else (predicates, unions, functions) compiles to an lxml XPath.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from lxml import etree

_STEP = r"[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*"
_SIMPLE = re.compile(rf"^{_STEP}(?:/{_STEP})*(?:/@[A-Za-z_][\w.-]*)?$")


@dataclass(frozen=True)
class ChildPath:
    """A plain child path: qualified names from the context node, and an optional final attribute."""

    steps: tuple[str, ...]
    attribute: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefixes", tuple(self.steps[:i + 1] for i in range(len(self.steps))))

    def nodes(self, context: etree._Element, cache: dict) -> list[etree._Element]:
        """The nodes at the end of the path; every prefix is computed once per document (``cache``)."""
        anchor = id(context)
        prefixes = self.prefixes  # type: ignore[attr-defined]
        found = cache.get((anchor, self.steps))
        if found is not None:
            return found
        nodes, start = [context], 0
        for i in range(len(prefixes) - 2, -1, -1):
            hit = cache.get((anchor, prefixes[i]))
            if hit is not None:
                nodes, start = hit, i + 1
                break
        for i in range(start, len(prefixes)):
            tag = self.steps[i]
            nodes = [child for parent in nodes for child in _children(parent, cache).get(tag, ())]
            cache[(anchor, prefixes[i])] = nodes
        return nodes

    def __call__(self, context: etree._Element, cache: dict | None = None) -> list[object]:
        nodes = self.nodes(context, {} if cache is None else cache)
        if self.attribute is None:
            return nodes
        return [value for value in (n.get(self.attribute) for n in nodes) if value is not None]


Trie = dict[str, "Trie"]


def _trie(paths: list[ChildPath]) -> Trie:
    """The child steps of ``paths`` merged into one prefix tree (built once, at compile time)."""
    root: Trie = {}
    for path in paths:
        node = root
        for step in path.steps:
            node = node.setdefault(step, {})
    return root


def _prefill(context: etree._Element, trie: Trie, cache: dict) -> None:
    """Walk ``trie`` once from ``context`` and store the nodes of every prefix in ``cache`` (the keys
    :meth:`ChildPath.nodes` looks up), so that each mapped plain path is then one dictionary lookup."""
    anchor = id(context)
    stack: list[tuple[list[etree._Element], Trie, tuple[str, ...]]] = [([context], trie, ())]
    while stack:
        parents, node, prefix = stack.pop()
        for tag, below in node.items():
            key = (*prefix, tag)
            found = [child for parent in parents for child in parent.iterchildren(tag)]
            cache[(anchor, key)] = found
            if below:
                if found:
                    stack.append((found, below, key))
                else:
                    _fill_empty(anchor, below, key, cache)


def _fill_empty(anchor: int, node: Trie, prefix: tuple[str, ...], cache: dict) -> None:
    for tag, below in node.items():
        key = (*prefix, tag)
        cache[(anchor, key)] = []
        if below:
            _fill_empty(anchor, below, key, cache)


def _children(parent: etree._Element, cache: dict) -> dict[str, list[etree._Element]]:
    """The element children of ``parent`` by tag, built once per node and document."""
    key = id(parent)
    found = cache.get(key)
    if found is None:
        found = {}
        for child in parent:
            found.setdefault(child.tag, []).append(child)
        cache[key] = found
    return found


def _compile(xpath: str, namespaces: dict[str, str]) -> ChildPath | etree.XPath:
    if _SIMPLE.match(xpath):
        parts = xpath.split("/")
        attribute = parts.pop()[1:] if parts[-1].startswith("@") else None
        steps = []
        for part in parts:
            prefix, _, local = part.partition(":")
            if prefix not in namespaces:
                raise etree.XPathSyntaxError(f"undeclared prefix {prefix!r}")
            steps.append(f"{{{namespaces[prefix]}}}{local}")
        return ChildPath(tuple(steps), attribute)
    return etree.XPath(xpath, namespaces=namespaces, smart_strings=False)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    bt: str
    xpaths: tuple[str, ...]
    compiled: tuple[ChildPath | etree.XPath, ...] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """What findings name as the field: ``BT-115 (cac:LegalMonetaryTotal/cbc:PayableAmount)``."""
        return f"{self.bt} ({self.xpaths[0]})"


@dataclass(frozen=True)
class RawFields:
    """The document's own texts by Cessio field name, plus where each came from."""

    values: dict[str, str | None]
    lists: dict[str, list[str]]
    specs: dict[str, FieldSpec]
    lines: list[dict[str, str | None]] = field(default_factory=list)  # per invoice line (BG-25)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def all(self, name: str) -> list[str]:
        return self.lists.get(name, [])

    def label(self, name: str) -> str:
        spec = self.specs.get(name)
        return spec.label if spec else name


@dataclass(frozen=True)
class CompiledMapping:
    syntax: str
    namespaces: dict[str, str]
    fields: tuple[FieldSpec, ...]
    lists: tuple[FieldSpec, ...]
    line_items: ChildPath | etree.XPath | None = None
    line_fields: tuple[FieldSpec, ...] = ()
    header_trie: Trie = field(default_factory=dict, repr=False, compare=False)
    line_trie: Trie = field(default_factory=dict, repr=False, compare=False)

    def extract(self, root: etree._Element) -> RawFields:
        cache: dict = {}
        _prefill(root, self.header_trie, cache)
        values = {spec.name: _first_text(spec, root, cache) for spec in self.fields}
        lists = {spec.name: _all_texts(spec, root, cache) for spec in self.lists}
        specs = {spec.name: spec for spec in (*self.fields, *self.lists)}
        lines = []
        if self.line_items is not None:
            lines = []
            for item in _evaluate(self.line_items, root, cache):
                _prefill(item, self.line_trie, cache)
                lines.append({spec.name: _first_text(spec, item, cache) for spec in self.line_fields})
        return RawFields(values, lists, specs, lines)


def _evaluate(compiled: ChildPath | etree.XPath, context: etree._Element, cache: dict) -> list:
    if isinstance(compiled, ChildPath):
        return compiled(context, cache)
    return compiled(context)


def _text(node: object) -> str | None:
    if isinstance(node, str):  # attribute values and text() results
        text = node
    elif isinstance(node, etree._Element):
        text = (node.text or "") if len(node) == 0 else "".join(node.itertext())
    else:
        return None
    text = text.strip()
    return text or None


def _first_text(spec: FieldSpec, root: etree._Element, cache: dict) -> str | None:
    for compiled in spec.compiled:
        for node in _evaluate(compiled, root, cache):
            text = _text(node)
            if text is not None:
                return text
    return None


def _all_texts(spec: FieldSpec, root: etree._Element, cache: dict) -> list[str]:
    out: list[str] = []
    for compiled in spec.compiled:
        out.extend(t for t in (_text(n) for n in _evaluate(compiled, root, cache)) if t is not None)
    return out


def compile_mapping(text: str, *, origin: str = "<mapping>") -> CompiledMapping:
    """Compile TOML text; a bad XPath fails here, at load time, naming the field."""
    data = tomllib.loads(text)
    namespaces = dict(data.get("namespaces") or {})

    def specs(section: str) -> tuple[FieldSpec, ...]:
        out = []
        for name, spec in (data.get(section) or {}).items():
            xpaths = spec["xpath"]
            xpaths = (xpaths,) if isinstance(xpaths, str) else tuple(xpaths)
            try:
                compiled = tuple(_compile(x, namespaces) for x in xpaths)
            except etree.XPathSyntaxError as exc:
                raise ValueError(f"{origin}: field {name}: bad XPath: {exc}") from None
            out.append(FieldSpec(name, spec.get("bt", name), xpaths, compiled))
        return tuple(out)

    line_items, line_fields = None, ()
    if "line_items" in data:
        section = data["line_items"]
        line_items = _compile(section["xpath"], namespaces)
        line_fields = tuple(FieldSpec(name, f"{section.get('bt', 'line')} {name}", (xpath,),
                                      (_compile(xpath, namespaces),))
                            for name, xpath in section["fields"].items())
    fields, lists = specs("fields"), specs("lists")

    def plain(found: tuple[FieldSpec, ...]) -> list[ChildPath]:
        return [c for spec in found for c in spec.compiled if isinstance(c, ChildPath)]

    header = plain((*fields, *lists)) + ([line_items] if isinstance(line_items, ChildPath) else [])
    return CompiledMapping(data["syntax"], namespaces, fields, lists, line_items, line_fields,
                           _trie(header), _trie(plain(line_fields)))


@functools.cache
def load_mapping(name: str) -> CompiledMapping:
    """``mappings/<name>.toml`` compiled (cached: compiled once per process)."""
    resource = resources.files("mappings") / f"{name}.toml"
    return compile_mapping(resource.read_text(encoding="utf-8"), origin=f"mappings/{name}.toml")
