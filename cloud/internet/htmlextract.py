"""A small HTML tree and selector subset for the page fetcher (stdlib ``html.parser``, no third-party parser).

Selectors: ``tag``, ``.class``, ``#id``, ``tag.class``, ``tag.a.b`` and descendant chains of those separated by
spaces (``div.shop span.name``); a field selector may end in ``@attr`` to read an attribute instead of the text
(``img@src``, ``a.more@href``); ``@attr`` alone reads the item's own attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["Node", "parse_html", "select", "select_value"]

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
_SIMPLE = re.compile(r"^(?P<tag>[a-z][a-z0-9-]*)?(?P<rest>(?:[.#][A-Za-z0-9_-]+)*)$")


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    def text(self) -> str:
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text())
        return " ".join(" ".join(parts).split())

    def descendants(self) -> list[Node]:
        out: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                out.append(child)
                out.extend(child.descendants())
        return out


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.current = self.root
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
            return
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("script", "style"):
            self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.current))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
            return
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:  # unmatched end tags are ignored
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root


def _matches(node: Node, simple: str) -> bool:
    m = _SIMPLE.match(simple)
    if not m:
        raise ValueError(f"unsupported selector {simple!r} (use tag, .class, #id, tag.class)")
    if m.group("tag") and node.tag != m.group("tag"):
        return False
    classes = set(node.attrs.get("class", "").split())
    for part in re.findall(r"[.#][A-Za-z0-9_-]+", m.group("rest")):
        if part[0] == "." and part[1:] not in classes:
            return False
        if part[0] == "#" and node.attrs.get("id") != part[1:]:
            return False
    return True


def check_selector(selector: str) -> str:
    """Validate a selector (raises ValueError naming the bad part)."""
    path = selector.split("@", 1)[0].split()
    for simple in path:
        if not _SIMPLE.match(simple):
            raise ValueError(f"unsupported selector {simple!r} in {selector!r} (use tag, .class, #id, tag.class)")
    return selector


def select(root: Node, selector: str) -> list[Node]:
    """Nodes under ``root`` matching the descendant chain ``selector`` (document order)."""
    current = [root]
    for simple in selector.split():
        found: list[Node] = []
        seen: set[int] = set()
        for base in current:
            for node in base.descendants():
                if id(node) not in seen and _matches(node, simple):
                    seen.add(id(node))
                    found.append(node)
        current = found
    return current


def select_value(item: Node, selector: str) -> str | None:
    """The text (or ``@attr``) of the first node under ``item`` matching ``selector``; None when absent."""
    path, _, attr = selector.partition("@")
    node = item if not path.strip() else next(iter(select(item, path)), None)
    if node is None:
        return None
    if attr:
        return node.attrs.get(attr)
    return node.text()
