"""Duplicate detection benchmark: the figures issue #17 asks for, printed.

    .venv/bin/python -m benchmarks.duplicates_bench [--errors]

Runs tests/data/duplicate_pairs.csv (165 pairs we wrote; see duplicate_pairs.md) through the real parser
(demo region + a second fixture county under one invented city) and the scorer in demand.duplicates, with
the thresholds of config/routing.yaml. For each pair, `text_a` is the open ticket and `text_b` the new
report, as the intake would see them. Open311 pairs get what handlers/open311.py does: the chosen
service_code overrides the category, and coordinates give the grid when the text names none.

Figures, for the `tune` split (thresholds and word lists were adjusted on it), the `holdout` split
(never used for tuning) and all pairs:
- automatic-merge precision (target >= 0.99) and merge recall;
- share of true duplicates merged or suggested (target >= 0.85);
- suggestions shown for different problems (noise for staff);
- the old rule (handlers/tickets.find_duplicate: same first-level category, same grid or place, bigram
  Jaccard of whole descriptions + 0.15 for the same place >= duplicates.min_similarity) re-implemented on
  the same parse with workflow.rules.routing.similarity/bigrams and its own configuration, for comparison: its
  single answer is an automatic join.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from demand import DemandParser, Gazetteer  # noqa: E402
from demand.duplicates import (  # noqa: E402
    MERGE,
    SUGGEST,
    Facts,
    compare,
    facts_from_demand,
    load_duplicate_config,
)
from demand.taxonomy import load_taxonomy  # noqa: E402
from workflow.rules.geo import locate_grid  # noqa: E402
from workflow.rules.routing import bigrams, load_routing, similarity  # noqa: E402

PAIRS = PROJECT / "tests" / "data" / "duplicate_pairs.csv"
REGION = PROJECT / "config" / "demo_region.yaml"
EXTRA_COUNTY = PROJECT / "tests" / "data" / "duplicates_region_extra.yaml"
ROUTING = PROJECT / "config" / "routing.yaml"


def region_tree() -> dict:
    """Two counties under one invented city, so each county's place names are in the same gazetteer."""
    first = yaml.safe_load(REGION.read_text(encoding="utf-8"))
    second = yaml.safe_load(EXTRA_COUNTY.read_text(encoding="utf-8"))
    return {"code": "9900", "name": "江州市", "tier": "city", "children": [first, second]}


def _grids(tree: dict) -> list[dict]:
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if node.get("tier") == "grid":
            out.append(node)
        stack.extend(node.get("children") or [])
    return out


def _float(value: str) -> float | None:
    return float(value) if value.strip() else None


@dataclass
class Side:
    demand: object
    facts: Facts
    grid: str | None  # as the ticket's grid_code would be


def prepare(parser: DemandParser, taxonomy, grids: list[dict], text: str, code: str, lat, lng) -> Side:
    """Parse as the intake (or Open311 submit_request) would."""
    demand = parser.parse(text)
    if code:
        chosen = taxonomy.resolve_label(code)
        if chosen is None:
            raise SystemExit(f"unknown service_code {code!r} in {PAIRS.name}")
        demand.category, demand.subcategory = chosen
    if lat is not None and not demand.location.grid:
        demand.location.grid = locate_grid(grids, lat, lng)
    facts = facts_from_demand(demand, service_code=code or None, lat=lat, lng=lng)
    return Side(demand, facts, demand.location.grid)


def old_rule(new: Side, old: Side, min_similarity: float) -> bool:
    """find_duplicate's test for one candidate (its query filters, then its score)."""
    demand = new.demand
    if not demand.category or not (new.grid or demand.location.place):
        return False
    if old.demand.category != demand.category:
        return False
    if new.grid:
        if old.grid != new.grid:
            return False
    elif old.demand.location.place != demand.location.place:
        return False
    score = similarity(old.demand.description or "", bigrams(demand.description or ""))
    if demand.location.place and old.demand.location.place == demand.location.place:
        score += 0.15
    return score >= min_similarity


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f} ({num}/{den})" if den else "n/a (0/0)"


def run_pairs(path: Path = PAIRS, routing: Path = ROUTING) -> list[tuple[dict, object, bool]]:
    """(row, new verdict, old rule joined?) for every labelled pair."""
    tree = region_tree()
    grids = [
        {"code": g["code"], "boundary": g.get("boundary"), "lat": g.get("lat"), "lng": g.get("lng")}
        for g in _grids(tree)
    ]
    parser = DemandParser(gazetteer=Gazetteer.from_region_tree(tree))
    taxonomy = load_taxonomy()
    config = load_duplicate_config(routing)
    old_min = load_routing(routing).duplicate_min_similarity
    results = []
    for row in csv.DictReader(path.open(encoding="utf-8")):
        old = prepare(
            parser, taxonomy, grids, row["text_a"], row["service_code_a"], _float(row["lat_a"]), _float(row["lng_a"])
        )
        new = prepare(
            parser, taxonomy, grids, row["text_b"], row["service_code_b"], _float(row["lat_b"]), _float(row["lng_b"])
        )
        # A ticket row keeps no region node (only grid_code, place, building …): compare what it keeps.
        ticket = replace(old.facts, node=None)
        results.append((row, compare(new.facts, ticket, config), old_rule(new, old, old_min)))
    return results


def figures(results: list[tuple[dict, object, bool]], split: str = "all") -> dict[str, tuple[int, int]]:
    """(numerator, denominator) per figure for one split (tune | holdout | all)."""
    chosen = [r for r in results if split == "all" or r[0]["split"] == split]
    dup = [r for r in chosen if r[0]["label"] == "duplicate"]
    diff = [r for r in chosen if r[0]["label"] != "duplicate"]
    merged = [r for r in chosen if r[1].decision == MERGE]
    good_merges = sum(r[0]["label"] == "duplicate" for r in merged)
    old_joined = [r for r in chosen if r[2]]
    old_good = sum(r[0]["label"] == "duplicate" for r in old_joined)
    return {
        "new  merge precision": (good_merges, len(merged)),
        "new  merge recall": (good_merges, len(dup)),
        "new  duplicates merged/suggested": (sum(r[1].decision in (MERGE, SUGGEST) for r in dup), len(dup)),
        "new  different pairs suggested": (sum(r[1].decision == SUGGEST for r in diff), len(diff)),
        "old  join precision": (old_good, len(old_joined)),
        "old  join recall": (old_good, len(dup)),
        "old  different problems joined": (len(old_joined) - old_good, len(diff)),
    }


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--errors", action="store_true", help="list wrong merges, noisy suggestions, missed duplicates")
    opts = args.parse_args(argv)
    config = load_duplicate_config(ROUTING)
    results = run_pairs()
    print(
        f"pairs: {PAIRS.relative_to(PROJECT)} ({len(results)}); thresholds: {ROUTING.relative_to(PROJECT)} "
        f"merge_similarity={config.merge_similarity} suggest_similarity={config.suggest_similarity} "
        f"merge_distance_m={config.merge_distance_m:g} suggest_distance_m={config.suggest_distance_m:g}"
    )
    for split in ("tune", "holdout", "all"):
        chosen = [r for r in results if split == "all" or r[0]["split"] == split]
        dups = sum(r[0]["label"] == "duplicate" for r in chosen)
        print(f"\n[{split}] {len(chosen)} pairs: {dups} duplicates, {len(chosen) - dups} different")
        for name, (num, den) in figures(results, split).items():
            print(f"  {name:34} {_ratio(num, den)}")

    if opts.errors:
        print("\nwrong merges / suggestions of different pairs / missed duplicates:")
        for row, verdict, _ in results:
            wrong_merge = verdict.decision == MERGE and row["label"] != "duplicate"
            noisy = verdict.decision == SUGGEST and row["label"] != "duplicate"
            missed = row["label"] == "duplicate" and verdict.decision not in (MERGE, SUGGEST)
            if wrong_merge or noisy or missed:
                tag = "WRONG-MERGE" if wrong_merge else "noise" if noisy else "missed"
                print(
                    f"  {tag:11} #{row['id']:>3} {row['split']:7} {verdict.decision:9} {verdict.score:.2f} "
                    f"{verdict.reason} | {row['text_a']} || {row['text_b']}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
