"""The county-editable category taxonomy (config/taxonomy.yaml): two levels plus lexicon keywords.

File shape::

    version: 1
    fallback: {category: 党务政务, subcategory: 其他}   # used when nothing is recognised
    urgent_words: [...]                                 # extra urgency triggers (literals)
    setting_words: [...]   # words naming where (学校, 工地, 夜市): they count little once a problem word is said
    categories:
      - name: 城乡建设
        keywords: [...]            # evidence for the first level only
        children:
          - name: 市政设施
            keywords: [路灯, 井盖]  # evidence for this second level (and so its parent)
            strong: [...]          # unambiguous words, counted 2.5 times
            weak: [...]            # hints that only matter when nothing better is said (0.3 times)
    open311:                                            # Open311 service codes and attributes
      城乡建设/市政设施: urban.municipal-facilities        # a code alone, or
      城乡建设/供水供电供气: {code: urban.utilities, attributes: [{code: utility, datatype: singlevaluelist, ...}]}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().parent.parent / "config" / "taxonomy.yaml"
OTHER = "其他"
# Open311 service codes travel in URLs (services/{code}.json): ASCII only, no "/".
SERVICE_CODE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")
ATTRIBUTE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ATTRIBUTE_TYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message says where."""


@dataclass(frozen=True)
class ServiceAttribute:
    """An extra question asked with an Open311 service (GeoReport v2 service definition)."""

    code: str
    datatype: str
    required: bool
    description: str
    values: tuple[tuple[str, str], ...] = ()  # (key, name) for the list types
    datatype_description: str = ""


@dataclass(frozen=True)
class Subcategory:
    """A second-level category with its lexicon."""

    name: str
    parent: str
    keywords: tuple[str, ...] = ()
    strong: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()
    code: str = ""  # the Open311 service code (the `open311` section, else derived from the names)
    attributes: tuple[ServiceAttribute, ...] = ()


@dataclass(frozen=True)
class Category:
    """A first-level category, its own keywords and its second levels."""

    name: str
    keywords: tuple[str, ...] = ()
    strong: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()
    children: tuple[Subcategory, ...] = ()


@dataclass
class Taxonomy:
    """The loaded taxonomy; lookups by first-level and second-level name."""

    categories: list[Category]
    fallback: tuple[str, str | None] = ("党务政务", OTHER)
    urgent_words: tuple[str, ...] = ()
    setting_words: tuple[str, ...] = ()
    version: str = "1"
    _by_name: dict[str, Category] = field(default_factory=dict, repr=False)
    _sub_parent: dict[str, str] = field(default_factory=dict, repr=False)
    _by_code: dict[str, Subcategory] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {c.name: c for c in self.categories}
        self._by_code = {s.code: s for c in self.categories for s in c.children if s.code}
        for category in self.categories:
            for sub in category.children:
                # A second-level name shared by two parents is ambiguous on its own; keep the first.
                self._sub_parent.setdefault(sub.name, category.name)

    @property
    def names(self) -> list[str]:
        """First-level names in file order."""
        return [c.name for c in self.categories]

    def category(self, name: str | None) -> Category | None:
        """The first-level category called `name`."""
        return self._by_name.get(name) if name else None

    def subcategories(self, name: str) -> list[str]:
        """Second-level names under a first level."""
        category = self._by_name.get(name)
        return [s.name for s in category.children] if category else []

    def service(self, code: str | None) -> Subcategory | None:
        """The second level whose Open311 service code is `code`."""
        return self._by_code.get(code) if code else None

    def resolve_label(self, label: str | None) -> tuple[str, str | None] | None:
        """Map a label (first level, second level, or "一级/二级") to (category, subcategory); None if unknown."""
        if not label:
            return None
        label = label.strip()
        for sep in ("/", "-", ">", "／", "—", "|"):
            if sep in label:
                first, _, second = label.partition(sep)
                first, second = first.strip(), second.strip()
                if first in self._by_name:
                    return first, second if second in self.subcategories(first) else None
        if label in self._by_name:
            return label, None
        if label in self._sub_parent:
            return self._sub_parent[label], label
        # Officers abbreviate: "城建" for 城乡建设, "劳动保障" for 劳动和社会保障.
        for name in self._by_name:
            if len(label) >= 2 and (label in name or name in label):
                return name, None
        return None


def _words(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TaxonomyError(f"{where}: expected a list of words")
    return tuple(str(v).strip() for v in value if v is not None and str(v).strip())


def derived_service_code(category: str, subcategory: str) -> str:
    """A URL-safe code for a second level the `open311` section leaves out (it changes with the names)."""
    return "x-" + hashlib.sha1(f"{category}/{subcategory}".encode()).hexdigest()[:10]


def _attribute(raw: object, where: str) -> ServiceAttribute:
    if not isinstance(raw, dict):
        raise TaxonomyError(f"{where}: each attribute is a mapping")
    code, datatype = str(raw.get("code") or ""), str(raw.get("datatype") or "string")
    if not ATTRIBUTE_CODE.match(code):
        raise TaxonomyError(f"{where}: attribute code {code!r} must match {ATTRIBUTE_CODE.pattern}")
    if datatype not in ATTRIBUTE_TYPES:
        raise TaxonomyError(f"{where}.{code}: datatype must be one of {', '.join(ATTRIBUTE_TYPES)}")
    values = raw.get("values") or {}
    if not isinstance(values, dict) or (datatype.endswith("valuelist") and not values):
        raise TaxonomyError(f"{where}.{code}: a {datatype} needs `values` {{key: name}}")
    return ServiceAttribute(
        code=code,
        datatype=datatype,
        required=bool(raw.get("required", False)),
        description=str(raw.get("description") or code),
        values=tuple((str(k), str(v)) for k, v in values.items()),
        datatype_description=str(raw.get("datatype_description") or ""),
    )


def _open311_section(raw: object) -> dict[str, tuple[str, tuple[ServiceAttribute, ...]]]:
    """`open311: {"一级/二级": code | {code, attributes}}` → {"一级/二级": (code, attributes)}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TaxonomyError("open311: expected a mapping of 一级/二级 to service codes")
    section: dict[str, tuple[str, tuple[ServiceAttribute, ...]]] = {}
    seen: dict[str, str] = {}
    for key, value in raw.items():
        entry = value if isinstance(value, dict) else {"code": value}
        code = str(entry.get("code") or "")
        if not SERVICE_CODE.match(code):
            raise TaxonomyError(f"open311.{key}: service code {code!r} must match {SERVICE_CODE.pattern}")
        if code in seen:
            raise TaxonomyError(f"open311.{key}: service code {code} is already used by {seen[code]}")
        seen[code] = str(key)
        attributes = tuple(_attribute(a, f"open311.{key}") for a in entry.get("attributes") or [])
        if len({a.code for a in attributes}) != len(attributes):
            raise TaxonomyError(f"open311.{key}: attribute codes repeat")
        section[str(key)] = (code, attributes)
    return section


def taxonomy_from_dict(data: dict) -> Taxonomy:
    """Build a Taxonomy from the parsed YAML; raises TaxonomyError on a malformed file."""
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list) or not data["categories"]:
        raise TaxonomyError("taxonomy: `categories` must be a non-empty list")
    open311 = _open311_section(data.get("open311"))
    used: set[str] = set()
    categories = []
    seen: set[str] = set()
    for i, raw in enumerate(data["categories"]):
        if not isinstance(raw, dict) or not str(raw.get("name") or "").strip():
            raise TaxonomyError(f"categories[{i}]: each category needs a name")
        name = str(raw["name"]).strip()
        if name in seen:
            raise TaxonomyError(f"categories[{i}]: duplicate category {name}")
        seen.add(name)
        children = []
        for j, child in enumerate(raw.get("children") or []):
            if not isinstance(child, dict) or not str(child.get("name") or "").strip():
                raise TaxonomyError(f"{name}.children[{j}]: each subcategory needs a name")
            sub_name = str(child["name"]).strip()
            code, attributes = open311.get(f"{name}/{sub_name}") or (derived_service_code(name, sub_name), ())
            used.add(f"{name}/{sub_name}")
            children.append(
                Subcategory(
                    name=sub_name,
                    parent=name,
                    keywords=_words(child.get("keywords"), f"{name}/{child['name']}.keywords"),
                    strong=_words(child.get("strong"), f"{name}/{child['name']}.strong"),
                    weak=_words(child.get("weak"), f"{name}/{child['name']}.weak"),
                    code=code,
                    attributes=attributes,
                )
            )
        categories.append(
            Category(
                name=name,
                keywords=_words(raw.get("keywords"), f"{name}.keywords"),
                strong=_words(raw.get("strong"), f"{name}.strong"),
                weak=_words(raw.get("weak"), f"{name}.weak"),
                children=tuple(children),
            )
        )
    if set(open311) - used:
        raise TaxonomyError(f"open311: no such second level: {', '.join(sorted(set(open311) - used))}")
    fallback_raw = data.get("fallback") or {}
    fallback_cat = str(fallback_raw.get("category") or categories[-1].name) if isinstance(fallback_raw, dict) else ""
    if fallback_cat not in seen:
        raise TaxonomyError(f"fallback: unknown category {fallback_cat}")
    fallback_sub = fallback_raw.get("subcategory") if isinstance(fallback_raw, dict) else None
    return Taxonomy(
        categories=categories,
        fallback=(fallback_cat, fallback_sub),
        urgent_words=_words(data.get("urgent_words"), "urgent_words"),
        setting_words=_words(data.get("setting_words"), "setting_words"),
        version=str(data.get("version", "1")),
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load the taxonomy file (default: config/taxonomy.yaml in the project)."""
    path = Path(path) if path else DEFAULT_TAXONOMY_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from None
    return taxonomy_from_dict(data)
