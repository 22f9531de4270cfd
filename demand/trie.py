"""A regular expression built from a word trie: one C-level scan finds the longest word at each position.

An alternation of hundreds of literals (`a|b|c…`) makes `re` try every branch at every position; the
trie form shares prefixes, so matching costs about the same for 10 words or 5,000.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _pattern(node: dict) -> str:
    terminal = "" in node
    branches = [re.escape(ch) + _pattern(child) for ch, child in sorted(node.items()) if ch != ""]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if terminal:
        # Optional and greedy: the longer word wins, the shorter one is the fallback.
        if len(branches) == 1 and len(branches[0]) == 1:
            return body + "?"
        return "(?:" + body + ")?"
    return body


def trie_regex(words: Iterable[str]) -> re.Pattern[str] | None:
    """A compiled pattern matching any of `words`, longest first at each position; None when words is empty."""
    root: dict = {}
    count = 0
    for word in words:
        if not word:
            continue
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = True
        count += 1
    if not count:
        return None
    return re.compile(_pattern(root))
