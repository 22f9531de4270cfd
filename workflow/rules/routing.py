"""Who owns a ticket: its grid, else the reporter's known grid, else the node named, else county intake;
then the county's category rules may lift it to a higher tier or a named department from the start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from models.region import TIER_RANK


@dataclass(frozen=True)
class RoutingRule:
    category: str
    subcategory: str | None = None
    tier: str | None = None
    member_role: str | None = None
    closable_tier: str | None = None
    # Complaints about officials (纪检监察 …): owned by `office` (a node code) or the rule's tier, and
    # invisible to every team below that tier (workflow.policy).
    sensitive: bool = False
    office: str | None = None

    def matches(self, category: str | None, subcategory: str | None) -> bool:
        return category == self.category and (self.subcategory is None or subcategory == self.subcategory)


@dataclass(frozen=True)
class Assignment:
    owner_code: str | None
    grid_code: str | None
    reason: str  # grid | reporter_grid | named_node | county_intake, + "+rule" when a rule lifted it
    member_role: str | None = None
    closable_tier: str | None = None


@dataclass(frozen=True)
class RoutingConfig:
    rules: tuple[RoutingRule, ...]
    duplicate_window_days: float = 3
    duplicate_min_similarity: float = 0.35


def load_routing(path: str | Path) -> RoutingConfig:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    rules = []
    for index, spec in enumerate(data.get("rules") or []):
        if not spec.get("category"):
            raise ValueError(f"routing rule #{index + 1} needs a category")
        for key in ("tier", "closable_tier"):
            if spec.get(key) and spec[key] not in TIER_RANK:
                raise ValueError(f"routing rule #{index + 1}: {key} {spec[key]!r} is not a tier")
        rules.append(
            RoutingRule(
                spec["category"],
                spec.get("subcategory"),
                spec.get("tier"),
                spec.get("member_role"),
                spec.get("closable_tier"),
                bool(spec.get("sensitive", False)),
                str(spec["office"]) if spec.get("office") else None,
            )
        )
        if rules[-1].sensitive and not (rules[-1].tier or rules[-1].office):
            raise ValueError(f"routing rule #{index + 1}: a sensitive category needs a tier or an office")
    duplicates = data.get("duplicates") or {}
    return RoutingConfig(
        tuple(rules), float(duplicates.get("window_days", 3)), float(duplicates.get("min_similarity", 0.35))
    )


def route(
    grid_code: str | None,
    node_code: str | None,
    reporter_grid: str | None,
    root_code: str | None,
    *,
    category: str | None = None,
    subcategory: str | None = None,
    rules: tuple[RoutingRule, ...] = (),
    lineage: Callable[[str], list[tuple[str, str]]] | None = None,
) -> Assignment:
    """`lineage(code)` lists (code, tier) from the root down to that node; rules need it to climb."""
    if grid_code:
        base = Assignment(grid_code, grid_code, "grid")
    elif reporter_grid:
        base = Assignment(reporter_grid, reporter_grid, "reporter_grid")
    elif node_code:
        base = Assignment(node_code, None, "named_node")
    else:
        base = Assignment(root_code, None, "county_intake")
    rule = next((r for r in rules if r.matches(category, subcategory)), None)
    if rule is None:
        return base
    owner = base.owner_code
    if rule.office and lineage is not None and lineage(rule.office):
        owner = rule.office
    elif rule.tier and owner and lineage is not None:
        chain = lineage(owner)
        # The nearest ancestor at (or above) the rule's tier; a ticket already higher stays where it is.
        candidates = [code for code, tier in chain if TIER_RANK.get(tier, 9) <= TIER_RANK[rule.tier]]
        if candidates:
            owner = candidates[-1]
    return Assignment(
        owner,
        base.grid_code,
        base.reason + ("+rule" if owner != base.owner_code else ""),
        rule.member_role,
        rule.closable_tier,
    )


def similarity(a: str | set[str], b: str | set[str]) -> float:
    """Jaccard similarity of character bigrams: cheap and robust for short Chinese texts. Either side may
    be given as its bigrams already (a text compared with many candidates is split once)."""
    left = bigrams(a) if isinstance(a, str) else a
    right = bigrams(b) if isinstance(b, str) else b
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def bigrams(text: str) -> set[str]:
    text = "".join(ch for ch in text if not ch.isspace())
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())
