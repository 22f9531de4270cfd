"""Place → region node resolution over the imported region tree.

Every node contributes its name, aliases and places, plus variants people actually write: the name
without its administrative suffix (东大社区 → 东大, 河西街道 → 河西), grid names with and without 第
(东大社区第1网格 → 东大1网格), natural-village groups without 组 (前湾组 → 前湾), county-prefixed places
without the county (青山县人民医院 → 县人民医院), and estates under the other suffixes residents use
(丽景花园 → 丽景小区 / 丽景家园, 翠苑小区 → 翠苑). Numerals are folded both in the tree and in the text
(see demand.normalize), so 一号楼/1号楼 and 第三网格/第3网格 meet.

When one name belongs to several nodes: if they lie on one line of descent (a village alias that is also a
place of its only grid) the most specific node wins; otherwise the match resolves to the node they share
and lists the nodes in `candidates`, so the caller can ask instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from demand.normalize import normalize
from demand.trie import KeywordScanner

TIER_DEPTH = {"county": 0, "town": 1, "community": 2, "village": 2, "grid": 3}
_ADMIN_SUFFIXES = ("社区居委会", "居委会", "村委会", "社区", "街道办", "街道", "村", "镇", "乡", "县", "区")
_GRID_NAME = re.compile(r"^(.*?)第?(\d+)(?:号)?网格$")
# Explicit names beat derived variants when the same text could mean two nodes.
_EXPLICIT, _DERIVED = 2, 1
_KIND_RANK = {"name": 2, "alias": 2, "place": 1}
# Estate suffixes residents swap freely: 丽景花园 is also written 丽景小区 or just 丽景.
_ESTATE_SUFFIXES = ("小区", "花园", "家园", "新村", "公寓")
_ESTATE_SWAPS = ("小区", "花园", "家园")
# A bare two-character estate stem is too likely to be an ordinary word (阳光, 幸福) unless it ends like a name.
_NAME_LIKE_ENDINGS = ("苑", "园", "村", "庄", "湾", "坪", "里")
# What joins two street names into one junction: "建设路和幸福路(路口)", "幸福路与建设路交叉口".
_JUNCTION = re.compile(r"^\s*(?:和|与|跟|同|及|、|/)\s*$")


@dataclass(frozen=True)
class Node:
    """One region node as the parser needs it."""

    code: str
    name: str
    tier: str
    parent: str | None
    depth: int
    lat: float | None = None
    lng: float | None = None


@dataclass(frozen=True)
class PlaceMatch:
    """A place name found in a message and the node it resolves to."""

    text: str  # as written (normalised form)
    start: int
    end: int
    node: Node
    kind: str  # name | alias | place
    grid: str | None  # grid code when the node is (inside) a grid
    candidates: tuple[str, ...] = ()  # the nodes an ambiguous name may mean (node is then what they share)


@dataclass
class Gazetteer:
    """Resolves place names in text to region nodes. Build it with `from_region_tree`."""

    nodes: dict[str, Node] = field(default_factory=dict)
    # surface form → (priority, kind, node codes)
    entries: dict[str, tuple[int, str, tuple[str, ...]]] = field(default_factory=dict)
    _scanner: KeywordScanner | None = None
    _grid_children: dict[str, list[str]] | None = None

    @classmethod
    def from_region_tree(cls, tree: dict | None) -> Gazetteer:
        """Index a region given as the nested dict of the region file; None or {} gives an empty gazetteer."""
        gaz = cls()
        if not isinstance(tree, dict):
            return gaz
        stack: list[tuple[dict, str | None, list[str]]] = [(tree, None, [])]
        while stack:
            raw, parent, ancestor_names = stack.pop()
            if not isinstance(raw, dict):
                continue
            code = str(raw.get("code") or "").strip()
            name = str(raw.get("name") or "").strip()
            tier = str(raw.get("tier") or "").strip()
            children = raw.get("children") or []
            if code:
                depth = TIER_DEPTH.get(tier, gaz.nodes[parent].depth + 1 if parent in gaz.nodes else 0)
                node = Node(code, name, tier, parent, depth, _float(raw.get("lat")), _float(raw.get("lng")))
                gaz.nodes[code] = node
                gaz._index_node(node, _strings(raw.get("aliases")), _strings(raw.get("places")), ancestor_names)
                # Only county/town names prefix place names ("青山县人民医院"); a community alias such as 东大
                # is part of the place's own name ("东大社区卫生服务站") and must not be cut off.
                names = ancestor_names + ([name] + _strings(raw.get("aliases")) if tier in ("county", "town") else [])
            else:
                # A synthetic root joining several counties: index the children, not itself.
                names = ancestor_names
            for child in reversed(children if isinstance(children, list) else []):
                stack.append((child, code or parent, names))
        gaz._scanner = KeywordScanner(gaz.entries)
        return gaz

    def __bool__(self) -> bool:
        return bool(self.nodes)

    # ---- building ---------------------------------------------------------------------------------------

    def _add(self, surface: str, code: str, priority: int, kind: str) -> None:
        surface = normalize(surface).replace(" ", "")
        # One- and two-character derived forms are too likely to occur by chance ("村", "东").
        if len(surface) < 2 or (priority == _DERIVED and len(surface) < 2):
            return
        current = self.entries.get(surface)
        if current is None or priority > current[0]:
            self.entries[surface] = (priority, kind, (code,))
        elif priority == current[0] and code not in current[2]:
            self.entries[surface] = (priority, current[1], current[2] + (code,))

    def _index_node(self, node: Node, aliases: list[str], places: list[str], ancestor_names: list[str]) -> None:
        for surface, kind in [(node.name, "name")] + [(alias, "alias") for alias in aliases]:
            if not surface:
                continue
            self._add(surface, node.code, _EXPLICIT, kind)
            for variant in _name_variants(normalize(surface), node.tier):
                self._add(variant, node.code, _DERIVED, kind)
        for place in places:
            if not place:
                continue
            self._add(place, node.code, _EXPLICIT, "place")
            for variant in _place_variants(normalize(place), ancestor_names):
                self._add(variant, node.code, _DERIVED, "place")

    # ---- querying ---------------------------------------------------------------------------------------

    def node(self, code: str | None) -> Node | None:
        """The node with this code, or None."""
        return self.nodes.get(code) if code else None

    def ancestors(self, code: str | None) -> list[str]:
        """Codes from the node up to the root, the node first."""
        out: list[str] = []
        while code and code in self.nodes and code not in out:
            out.append(code)
            code = self.nodes[code].parent
        return out

    def is_within(self, code: str | None, ancestor: str | None) -> bool:
        """True when `code` is `ancestor` or lies below it."""
        return bool(code and ancestor) and ancestor in self.ancestors(code)

    def grid_of(self, code: str | None) -> str | None:
        """The grid a node is (or lies in); None for nodes above grid level."""
        for candidate in self.ancestors(code):
            if self.nodes[candidate].tier == "grid":
                return candidate
        return None

    def _common_ancestor(self, codes: tuple[str, ...]) -> str | None:
        paths = [list(reversed(self.ancestors(code))) for code in codes]
        common = None
        for level in zip(*paths, strict=False):
            if all(c == level[0] for c in level):
                common = level[0]
            else:
                break
        return common

    def find_all(self, text: str) -> list[PlaceMatch]:
        """Every place mention in already-normalised text, longest match at each position, in order."""
        if self._scanner is None or not text:
            return []
        found = []
        for start, end, surface in self._scanner.finditer(text):
            _, kind, codes = self.entries[surface]
            candidates: tuple[str, ...] = ()
            if len(codes) == 1:
                code = codes[0]
            else:
                deepest = max(codes, key=lambda c: self.nodes[c].depth)
                if all(self.is_within(deepest, other) for other in codes):
                    code = deepest  # one line of descent: the most specific node the name belongs to
                else:
                    code = self._common_ancestor(codes)
                    candidates = tuple(codes)
            if code is None:
                continue
            node = self.nodes[code]
            found.append(PlaceMatch(surface, start, end, node, kind, self.grid_of(code), candidates))
        return found

    def only_grid(self, code: str | None) -> str | None:
        """The grid of a node, or its single grid when a village or community has exactly one; else None."""
        grid = self.grid_of(code)
        if grid or code not in self.nodes:
            return grid
        if self.nodes[code].tier not in ("village", "community"):
            return None
        if self._grid_children is None:
            children: dict[str, list[str]] = {}
            for child, node in self.nodes.items():
                if node.tier == "grid" and node.parent:
                    children.setdefault(node.parent, []).append(child)
            self._grid_children = children
        grids = self._grid_children.get(code, [])
        return grids[0] if len(grids) == 1 else None

    def best(self, matches: list[PlaceMatch]) -> PlaceMatch | None:
        """The mention that says most: the deepest node; a named node over a place; then the earliest."""
        if not matches:
            return None
        return max(matches, key=lambda m: (m.node.depth, _KIND_RANK.get(m.kind, 0), len(m.text), -m.start))

    def locate(self, text: str, matches: list[PlaceMatch] | None = None) -> tuple[PlaceMatch | None, str]:
        """The best place for a whole message, and the text its offsets refer to.

        Beyond `best`: two places of different grids joined as a junction ("建设路和幸福路路口") mean
        the node both lie in, not either grid; and a name split by 的 ("东大的菜市场") is tried joined
        when that says more than the parts did.
        """
        matches = self.find_all(text) if matches is None else matches
        best = self.best(matches)
        if best is not None and best.grid is not None:
            for other in matches:
                if other.grid is None or other.grid == best.grid or other.node.depth != best.node.depth:
                    continue
                first, second = (best, other) if best.start < other.start else (other, best)
                if _JUNCTION.match(text[first.end : second.start]):
                    code = self._common_ancestor((best.node.code, other.node.code))
                    if code:
                        joined = text[first.start : second.end]
                        return PlaceMatch(joined, first.start, second.end, self.nodes[code], "place", None), text
        if best is not None and best.grid is None and any(text[m.end : m.end + 1] == "的" for m in matches):
            joined_text = text.replace("的", "")
            widened = self.best(self.find_all(joined_text))
            if widened is not None and widened.node.depth > (best.node.depth if best else -1):
                return widened, joined_text
        return best, text

    def resolve(self, text: str) -> PlaceMatch | None:
        """The best place mention in raw or normalised text, or None."""
        return self.best(self.find_all(normalize(text)))


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return []


def _float(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _strip_admin_suffix(name: str) -> str:
    for suffix in _ADMIN_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _name_variants(name: str, tier: str) -> set[str]:
    variants = set()
    grid = _GRID_NAME.match(name) if tier == "grid" else None
    if grid:
        base, number = grid.group(1), grid.group(2)
        bases = {base, _strip_admin_suffix(base)} if base else set()
        for b in bases:
            variants |= {f"{b}第{number}网格", f"{b}{number}网格", f"{b}{number}号网格"}
    else:
        stripped = _strip_admin_suffix(name)
        if stripped != name:
            variants.add(stripped)
            if tier == "community":
                variants |= {stripped + "小区", stripped + "居委会"}
            elif tier == "village":
                variants |= {stripped + "村委会", stripped + "村委"}
            elif tier == "town" and name.endswith("街道"):
                variants.add(stripped + "街道办")
    variants.discard(name)
    return variants


def _place_variants(place: str, ancestor_names: list[str]) -> set[str]:
    variants = set()
    if place.endswith("组") and len(place) >= 3:
        variants.add(place[:-1])
    for suffix in _ESTATE_SUFFIXES:
        stem = place[: -len(suffix)]
        if place.endswith(suffix) and len(stem) >= 2:
            variants |= {stem + other for other in _ESTATE_SWAPS}
            if len(stem) >= 3 or stem.endswith(_NAME_LIKE_ENDINGS):
                variants.add(stem)
            break
    for ancestor in ancestor_names:
        ancestor = normalize(ancestor)
        if ancestor and place.startswith(ancestor) and len(place) - len(ancestor) >= 4:
            rest = place[len(ancestor) :]
            variants.add(rest)
            if ancestor.endswith("县"):
                variants.add("县" + rest)
    variants.discard(place)
    return variants
