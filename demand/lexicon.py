"""The built-in classifier: weighted keywords from the taxonomy file, no training data needed.

Each keyword found (longest match at each position, one scan) adds weight to its second-level
category and so to its first level; longer words weigh more because they are more specific. The first
level with the most evidence wins, then the best second level inside it. Confidence combines how
dominant the winner is with how much evidence there is at all.

Setting words (the taxonomy's `setting_words`: 学校, 工地, 夜市, 医院 …) say where something happens, not
what is wrong. They decide only when nothing else is said; next to a problem word (超速, 欠工资, 油烟)
they count half, so "trucks speeding past the school" is traffic and "wages owed on the building
site" is labour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from demand.normalize import normalize
from demand.taxonomy import OTHER, Taxonomy
from demand.trie import KeywordScanner

_LENGTH_WEIGHT = {1: 0.4, 2: 1.0, 3: 1.6}
_LONG_WEIGHT = 2.0
_STRONG_FACTOR = 2.5
_WEAK_FACTOR = 0.3
# Where residents state the matter: the first words usually name it, later ones explain.
_HEAD_CHARS = 40
_HEAD_FACTOR = 1.3
# What a setting word still counts once a problem word is present.
_SETTING_FACTOR = 0.5


@dataclass(frozen=True)
class LexiconResult:
    """What the lexicon thinks, with the evidence."""

    category: str | None
    subcategory: str | None
    confidence: float
    evidence: tuple[str, ...]  # the keywords that counted, strongest first
    scores: dict[str, float]  # first level → score (for blending with a trained model)


class LexiconClassifier:
    """Keyword classifier over a Taxonomy."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        # keyword → list of (first level, second level or None, weight)
        table: dict[str, list[tuple[str, str | None, float]]] = defaultdict(list)
        for category in taxonomy.categories:
            for word in category.keywords:
                table[word].append((category.name, None, _weight(word)))
            for word in category.strong:
                table[word].append((category.name, None, _weight(word) * _STRONG_FACTOR))
            for word in category.weak:
                table[word].append((category.name, None, _weight(word) * _WEAK_FACTOR))
            for sub in category.children:
                for word in sub.keywords:
                    table[word].append((category.name, sub.name, _weight(word)))
                for word in sub.strong:
                    table[word].append((category.name, sub.name, _weight(word) * _STRONG_FACTOR))
                for word in sub.weak:
                    table[word].append((category.name, sub.name, _weight(word) * _WEAK_FACTOR))
        # Keywords go through the same normalisation as messages (一号线 → 1号线, full-width → ASCII).
        merged: dict[str, list[tuple[str, str | None, float]]] = defaultdict(list)
        for word, entries in table.items():
            merged[normalize(word)].extend(entries)
        merged.pop("", None)
        self._table = dict(merged)
        # Public read-only view: the trained model reuses the keyword table as features.
        self.table = self._table
        self._scanner = KeywordScanner(self._table)
        self._settings = frozenset(normalize(w) for w in taxonomy.setting_words)
        # Ties go to the category listed first in the file, so results are stable.
        self._order = {name: i for i, name in enumerate(taxonomy.names)}

    def classify(self, text: str, hints: dict[tuple[str, str | None], float] | None = None) -> LexiconResult:
        """Classify normalised text; a result with category None when no keyword is present.

        `hints` adds evidence from outside the words ((category, subcategory) → weight), e.g. the kind of
        danger an urgent message describes.
        """
        if not text or not self._scanner:
            return LexiconResult(None, None, 0.0, (), {})
        first: dict[str, float] = defaultdict(float)
        second: dict[tuple[str, str], float] = defaultdict(float)
        set_first: dict[str, float] = defaultdict(float)
        set_second: dict[tuple[str, str], float] = defaultdict(float)
        seen: dict[str, int] = {}
        word_weight: dict[str, float] = {}
        for start, _, word in self._scanner.finditer(text):
            count = seen.get(word, 0)
            seen[word] = count + 1
            if count >= 3:
                continue
            # Repeating a word adds a little: a long complaint says "噪音" five times about one thing.
            factor = (1.0 if count == 0 else 0.35) * (_HEAD_FACTOR if start < _HEAD_CHARS else 1.0)
            setting = word in self._settings
            for cat, sub, weight in self._table[word]:
                w = weight * factor
                (set_first if setting else first)[cat] += w
                if sub:
                    (set_second if setting else second)[(cat, sub)] += w
                word_weight[word] = max(word_weight.get(word, 0.0), w * (_SETTING_FACTOR if setting else 1.0))
        scale = _SETTING_FACTOR if first else 1.0
        for cat, w in set_first.items():
            first[cat] += w * scale
        for key, w in set_second.items():
            second[key] += w * scale
        for (cat, sub), w in (hints or {}).items():
            if cat in self._order:
                first[cat] += w
                if sub:
                    second[(cat, sub)] += w
        if not first:
            return LexiconResult(None, None, 0.0, (), {})
        order = self._order
        best = max(first, key=lambda c: (first[c], -order.get(c, 0)))
        subs = {s: v for (c, s), v in second.items() if c == best}
        if subs:
            sub = max(subs, key=lambda s: subs[s])
        else:
            sub = OTHER if OTHER in self.taxonomy.subcategories(best) else None
        total = sum(first.values())
        share = first[best] / total
        # 1 - e^(-x): one two-character word ≈ 0.5, two or three clear words ≈ 0.85+.
        amount = 1.0 - math.exp(-first[best] / 1.4)
        confidence = round(share * amount, 3)
        evidence = tuple(sorted(word_weight, key=lambda w: -word_weight[w])[:8])
        return LexiconResult(best, sub, confidence, evidence, dict(first))


def _weight(word: str) -> float:
    return _LENGTH_WEIGHT.get(len(word), _LONG_WEIGHT)
