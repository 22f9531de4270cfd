"""DemandParser: one message in, one structured Demand out — never an exception.

Order of work for a message:
1. clean and normalise the text (demand.normalize);
2. read officer fields (【事项】… / key：value), which win over every guess below;
3. contacts (phone, ID card), then blank them so their digits are not read as house numbers;
4. location: the officer's 地点 field, else the best place mention; building / unit / room near it;
5. category: officer's 类别, else the trained model when it is confident, else the lexicon;
6. urgency: officer's 紧急 field, else the rules in demand.urgency;
7. what is missing for the ticket to be actionable ('matter', 'location').
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from demand.brackets import parse_fields, urgent_flag
from demand.contacts import Contact, blank_contacts, find_contacts, mask_name, mask_text
from demand.gazetteer import Gazetteer, PlaceMatch
from demand.lexicon import LexiconClassifier, LexiconResult
from demand.normalize import clean_text, match_text
from demand.taxonomy import OTHER, Taxonomy, load_taxonomy
from demand.urgency import UrgencyDetector

log = logging.getLogger(__name__)

MISSING_MATTER = "matter"
MISSING_LOCATION = "location"

# Building / unit / room, in the matching form of the text (numerals already digits).
_TRIPLE = re.compile(r"(?<!\d)(\d{1,3})\s*[-—－]\s*(\d{1,2})\s*[-—－]\s*(\d{3,4})(?!\d)")
_BUILDING = re.compile(r"(?<![\d.])(\d{1,3}|[A-Za-z])\s*(?:号楼|号栋|栋|幢|座|号院|号楼栋)")
_UNIT = re.compile(r"(?<!\d)(\d{1,2})\s*(?:单元|门洞|号门)")
_ROOM = re.compile(r"(?<!\d)(\d{2,4})\s*(?:室|号房|房间|号户|户)(?!口|型|主)")
# A bare 3-4 digit number right after a building/unit ("5号楼502", "3单元1202").
_ROOM_AFTER = re.compile(r"^\s*(?:的|之)?\s*(\d{3,4})(?![\d元块年月日号米平万人岁次个辆台斤%])")
# ... or a little later, when the building is stated ("5号楼有人漏气，好像是502在漏气").
_ROOM_LOOSE = re.compile(r"(?<![\d.])([1-9]\d{2,3})(?![\d元块年月日号米平万人岁次个辆台斤%:：.线路])")
# Greetings and filler that do not make a matter ("你好，在吗？我想反映一下").
_FILLER = re.compile(
    r"你好|您好|在吗|在不在|请问|谢谢|麻烦|有人吗|想反映|反映一下|反映个|反映|问题|有个事|有件事|一下|"
    r"我要|我想|咨询|投诉|举报|领导|同志|工作人员|帮忙|帮我|处理|解决|看看|尽快|急|啊|吧|呢|吗|的|了|哦|嗯"
)
_MEANINGFUL = re.compile(r"[\u4e00-\u9fffA-Za-z]")
# Below this many meaningful characters (after filler and place names are removed) a message with no
# keyword is not a matter ("你好", "东大社区", "🙂🙂").
_MIN_MATTER_CHARS = 6
# The trained model never decides below this confidence when the lexicon has a different verdict.
MODEL_THRESHOLD = 0.45
# A lexicon verdict at least this sure wins for a category the trained model has never seen.
UNSEEN_CATEGORY_CONFIDENCE = 0.5
# The kind of danger an urgent message describes is evidence for its category: a fire is a 消防 matter
# even when it happens in a school. (rule kind from demand.urgency → category, subcategory)
DANGER_HINTS: dict[str, tuple[str, str]] = {
    "fire": ("政法", "消防安全"),
    "explosion": ("政法", "消防安全"),
    "gas": ("城乡建设", "供水供电供气"),
    "electric": ("城乡建设", "供水供电供气"),
    "collapse": ("城乡建设", "房屋安全"),
    "falling": ("城乡建设", "房屋安全"),
    "manhole": ("城乡建设", "市政设施"),
    "violence": ("政法", "治安管理"),
    "quarrel": ("政法", "治安管理"),
    "self_harm": ("政法", "紧急救助"),
    "medical": ("卫生计生", "医疗服务"),
    "accident": ("交通运输", "道路交通"),
    "welfare": ("民政", "养老服务"),
    "missing_person": ("政法", "紧急救助"),
    "fraud": ("政法", "诈骗防范"),
}
DANGER_HINT_WEIGHT = 1.5
# Below this confidence a guessed category is not trusted: the demand is flagged `needs_review` and
# belongs in the 待分类 queue for a person (the category stays as the best guess, for them to confirm).
ABSTAIN_THRESHOLD = 0.35
# How often a long-lived parser checks the model folder for a retrained model.
MODEL_CHECK_SECONDS = 30.0


@dataclass
class Location:
    """Where the demand is. `node` is the resolved region node, `grid` the grid when known."""

    text: str | None = None  # the location words as written (normalised)
    place: str | None = None  # the place name that resolved
    node: str | None = None  # region node code
    grid: str | None = None  # grid code
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    source: str | None = None  # 'officer' | 'text' | 'reporter' | None
    # When the name fits several nodes: their codes (node is then the one they share, grid None).
    candidates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "text": self.text,
            "place": self.place,
            "node": self.node,
            "grid": self.grid,
            "building": self.building,
            "unit": self.unit,
            "room": self.room,
            "candidates": list(self.candidates),
        }


@dataclass
class Demand:
    """A resident's or officer's demand, structured."""

    description: str = ""
    category: str | None = None
    subcategory: str | None = None
    confidence: float = 0.0
    classifier: str = "none"  # 'officer' | 'model' | 'lexicon' | 'fallback' | 'none'
    evidence: list[str] = field(default_factory=list)
    urgency: str = "normal"
    urgency_reason: str | None = None
    location: Location = field(default_factory=Location)
    contacts: list[Contact] = field(default_factory=list)
    reporter_name: str | None = None
    missing: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    reporter_grid: str | None = None
    # True when the category is too unsure to route on: the ticket goes to 待分类 for a person.
    needs_review: bool = False

    @property
    def grid(self) -> str | None:
        """The grid the demand belongs to, when known."""
        return self.location.grid

    @property
    def actionable(self) -> bool:
        """False when there is nothing to act on (no recognisable matter)."""
        return MISSING_MATTER not in self.missing

    def to_dict(self, masked: bool = True) -> dict[str, Any]:
        """JSON-able dict (the `flask parse` shape). Contacts, names and numbers in text masked by default."""
        fields = dict(self.fields)
        if masked:
            # Officers put numbers in any field; mask all of them, and names where a name is stated.
            fields = {key: mask_text(value, self.contacts) for key, value in fields.items()}
            if "reporter" in fields:
                fields["reporter"] = mask_name(fields["reporter"])
        return {
            "category": self.category,
            "subcategory": self.subcategory,
            "confidence": round(self.confidence, 3),
            "classifier": self.classifier,
            "needs_review": self.needs_review,
            "urgency": self.urgency,
            "urgency_reason": mask_text(self.urgency_reason, self.contacts)
            if masked and self.urgency_reason
            else self.urgency_reason,
            "grid": self.location.grid,
            "location": {**self.location.to_dict(), "text": mask_text(self.location.text or "", self.contacts) or None}
            if masked
            else self.location.to_dict(),
            "contacts": [c.to_dict(masked=masked) for c in self.contacts],
            "reporter_name": mask_name(self.reporter_name) if masked and self.reporter_name else self.reporter_name,
            "missing": list(self.missing),
            "description": mask_text(self.description, self.contacts) if masked else self.description,
            "fields": fields,
        }


class DemandParser:
    """Parses messages into Demands. Thread-safe for reading; build one per process and reuse it."""

    def __init__(
        self,
        gazetteer: Gazetteer | None = None,
        model_dir: str | os.PathLike | None = None,
        taxonomy: Taxonomy | None = None,
        model_threshold: float = MODEL_THRESHOLD,
        abstain_threshold: float = ABSTAIN_THRESHOLD,
    ) -> None:
        self.gazetteer = gazetteer if gazetteer is not None else Gazetteer()
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
        self.lexicon = LexiconClassifier(self.taxonomy)
        self.urgency = UrgencyDetector(self.taxonomy.urgent_words)
        self.model_dir = Path(model_dir) if model_dir else None
        self.model_threshold = model_threshold
        self.abstain_threshold = abstain_threshold
        self.model: Any = None
        self._model_categories: set[str] = set()
        self._model_stamp: object = None
        self._model_checked = 0.0
        self.reload_model()

    # ---- trained model ----------------------------------------------------------------------------------

    def reload_model(self) -> bool:
        """Load the newest trained model from model_dir, if it changed; True when a model is in use."""
        self._model_checked = time.monotonic()
        if self.model_dir is None:
            return False
        from demand import classifier  # local: keeps scikit-learn off the import path of lexicon-only users

        try:
            stamp = classifier.latest_stamp(self.model_dir)
            if stamp is None:
                self.model, self._model_stamp = None, None
                return False
            if stamp != self._model_stamp:
                self.model = classifier.load_latest(self.model_dir)
                self._model_stamp = stamp
                self._model_categories = {
                    (self.taxonomy.resolve_label(label) or (label, None))[0] for label in self.model.labels
                }
                log.info("demand model loaded", extra={"model_dir": str(self.model_dir), "stamp": str(stamp)})
        except Exception:  # a corrupt or incompatible model must not stop intake: fall back to the lexicon
            log.exception("could not load the demand model; using the lexicon")
            self.model, self._model_stamp = None, None
        return self.model is not None

    def _maybe_reload(self) -> None:
        if self.model_dir is not None and time.monotonic() - self._model_checked > MODEL_CHECK_SECONDS:
            self.reload_model()

    # ---- parsing ----------------------------------------------------------------------------------------

    def parse(self, text: object, reporter_grid: str | None = None) -> Demand:
        """Parse one message. Never raises: on an internal error the demand says what is missing."""
        try:
            return self._parse(text, reporter_grid)
        except Exception:  # the intake must always get a Demand; the log keeps the evidence
            log.exception("demand parser failed; returning an unclassified demand")
            description = clean_text(text) if isinstance(text, str) else ""
            return Demand(
                description=description,
                missing=[MISSING_MATTER, MISSING_LOCATION],
                reporter_grid=reporter_grid,
                location=Location(node=reporter_grid, grid=reporter_grid, source="reporter" if reporter_grid else None),
            )

    def _parse(self, text: object, reporter_grid: str | None) -> Demand:
        self._maybe_reload()
        clean = clean_text(text)
        demand = Demand(description=clean, reporter_grid=reporter_grid)
        if not clean:
            demand.category, demand.subcategory = self.taxonomy.fallback
            demand.missing = [MISSING_MATTER] + ([] if reporter_grid else [MISSING_LOCATION])
            demand.location = self._reporter_location(reporter_grid)
            return demand

        fields = parse_fields(clean)
        demand.fields = fields
        demand.reporter_name = fields.get("reporter", "").split()[0][:20] if fields.get("reporter") else None

        contacts = find_contacts(clean)
        for key in ("phone", "id_card"):
            for extra in find_contacts(fields.get(key, "")):
                if extra not in contacts:
                    contacts.append(extra)
        demand.contacts = contacts

        body = blank_contacts(match_text(clean))
        demand.location, place_spans = self._locate(body, fields, reporter_grid)

        # Classify on the matter when the officer stated it (the rest is names and numbers), with place
        # names blanked so "东大小学" does not read as an education matter.
        whole = _blank_spans(body, place_spans)
        subject = whole
        if fields.get("matter"):
            matter = blank_contacts(match_text(fields["matter"]))
            matter = _blank_spans(matter, [(m.start, m.end) for m in self.gazetteer.find_all(matter)])
            # A terse matter ("其他") that names nothing known: the rest of the report may.
            if self.lexicon.classify(matter).category is not None or not self.lexicon.classify(whole).category:
                subject = matter
        # Urgency first: the kind of danger is evidence for the category.
        kinds = self._judge_urgency(demand, body, fields)
        hints: dict[tuple[str, str | None], float] = {}
        for kind in kinds:
            if kind in DANGER_HINTS:
                hints[DANGER_HINTS[kind]] = DANGER_HINT_WEIGHT
        # The trained model sees the message as its training data looked: the whole cleaned text.
        self._classify(demand, subject, fields, clean, hints)
        demand.needs_review = demand.classifier in ("lexicon", "fallback", "model") and (
            demand.confidence < self.abstain_threshold
        )

        missing = []
        if not self._has_matter(demand, subject):
            missing.append(MISSING_MATTER)
        if demand.location.node is None:
            missing.append(MISSING_LOCATION)
        demand.missing = missing
        return demand

    # ---- location ---------------------------------------------------------------------------------------

    def _reporter_location(self, reporter_grid: str | None) -> Location:
        if not reporter_grid:
            return Location()
        return Location(
            node=reporter_grid, grid=self.gazetteer.grid_of(reporter_grid) or reporter_grid, source="reporter"
        )

    def _locate(
        self, body: str, fields: dict[str, str], reporter_grid: str | None
    ) -> tuple[Location, list[tuple[int, int]]]:
        matches = self.gazetteer.find_all(body)
        spans = [(m.start, m.end) for m in matches]
        stated = " ".join(v for k, v in fields.items() if k in ("location", "grid") and v)
        best: PlaceMatch | None = None
        source = None
        address_text = body
        if stated:
            best, address_text = self.gazetteer.locate(blank_contacts(match_text(stated)))
            source = "officer"
        if best is None:
            best, address_text = self.gazetteer.locate(body, matches)
            source = "text" if best else None
        location = Location(source=source)
        if stated and best is None:
            location.text = fields.get("location") or stated
        if best is not None:
            location.place = best.text
            location.node = best.node.code
            # A village (or community) with a single grid: naming it names the grid.
            location.grid = best.grid or self.gazetteer.only_grid(best.node.code)
            location.candidates = list(best.candidates)
        building, unit, room, end = _address_parts(address_text, best.end if best is not None else 0)
        location.building, location.unit, location.room = building, unit, room
        if best is not None:
            location.text = address_text[best.start : max(end, best.end)].strip()
        # No grid from the text: the reporter's known grid fills in when it lies inside what was named
        # (or when nothing was named at all).
        if location.grid is None and reporter_grid:
            reporter_grid_code = self.gazetteer.grid_of(reporter_grid) or reporter_grid
            if location.node is None:
                fallback = self._reporter_location(reporter_grid)
                fallback.building, fallback.unit, fallback.room = building, unit, room
                fallback.text = location.text
                location = fallback
            elif self.gazetteer.is_within(reporter_grid_code, location.node):
                location.grid = reporter_grid_code
        return location, spans

    # ---- category ---------------------------------------------------------------------------------------

    def _classify(
        self,
        demand: Demand,
        subject: str,
        fields: dict[str, str],
        whole_text: str,
        hints: dict[tuple[str, str | None], float] | None = None,
    ) -> None:
        lex = self.lexicon.classify(subject, hints)
        stated = self.taxonomy.resolve_label(fields.get("category"))
        if stated:
            demand.category, demand.subcategory = stated
            if demand.subcategory is None:
                demand.subcategory = (
                    lex.subcategory
                    if lex.category == demand.category
                    else (OTHER if OTHER in self.taxonomy.subcategories(demand.category) else None)
                )
            demand.confidence, demand.classifier = 1.0, "officer"
            demand.evidence = [fields["category"]]
            return
        model_label, model_conf = self._model_predict(whole_text)
        if model_label is not None and self._trust_model(model_label, model_conf, lex):
            resolved = self.taxonomy.resolve_label(model_label)
            category, subcategory = resolved if resolved else (model_label, None)
            if subcategory is None:
                if lex.category == category:
                    subcategory = lex.subcategory
                elif OTHER in self.taxonomy.subcategories(category):
                    subcategory = OTHER
            demand.category, demand.subcategory = category, subcategory
            demand.confidence, demand.classifier = model_conf, "model"
            demand.evidence = list(lex.evidence) if lex.category == category else []
            return
        if lex.category is not None:
            demand.category, demand.subcategory = lex.category, lex.subcategory
            demand.confidence, demand.classifier = lex.confidence, "lexicon"
            demand.evidence = list(lex.evidence)
            return
        demand.category, demand.subcategory = self.taxonomy.fallback
        demand.confidence, demand.classifier = 0.0, "fallback"

    def _trust_model(self, label: str, confidence: float, lex: LexiconResult) -> bool:
        """Model or lexicon? The model, when it is at least as sure as the lexicon (and over a floor).

        A county's history rarely covers every category (the model cannot say 纪检监察 if no past order
        had it), so a lexicon verdict for a category the model never learned wins outright.
        """
        if lex.category is None:
            return True
        resolved = self.taxonomy.resolve_label(label)
        if (resolved[0] if resolved else label) == lex.category:
            return True
        if lex.category not in self._model_categories and lex.confidence >= UNSEEN_CATEGORY_CONFIDENCE:
            return False
        return confidence >= max(self.model_threshold, lex.confidence)

    def _model_predict(self, text: str) -> tuple[str | None, float]:
        if self.model is None:
            return None, 0.0
        try:
            label, confidence = self.model.predict_one(text)
            return label, float(confidence)
        except Exception:  # a model that fails on one text must not stop intake
            log.exception("demand model failed on a message; using the lexicon")
            return None, 0.0

    # ---- urgency and completeness -----------------------------------------------------------------------

    def _judge_urgency(self, demand: Demand, body: str, fields: dict[str, str]) -> tuple[str, ...]:
        """Set the demand's urgency; return the danger kinds found (for the category)."""
        verdict = self.urgency.detect(body)
        stated = urgent_flag(fields.get("urgent"))
        if stated is not None:
            demand.urgency = "urgent" if stated else "normal"
            demand.urgency_reason = f"紧急：{fields['urgent'][:20]}" if stated else None
            return verdict.kinds
        demand.urgency, demand.urgency_reason = verdict.level, verdict.reason
        return verdict.kinds

    def _has_matter(self, demand: Demand, subject: str) -> bool:
        if demand.classifier in ("officer", "lexicon") or demand.fields.get("matter"):
            return True
        if demand.urgency == "urgent":
            return True
        rest = _FILLER.sub("", subject)
        meaningful = len(_MEANINGFUL.findall(rest))
        if demand.classifier == "model":
            return meaningful >= 3
        return meaningful >= _MIN_MATTER_CHARS

    # ---- dialog -----------------------------------------------------------------------------------------

    def merge(self, demand: Demand, answer_text: object) -> Demand:
        """Fold a resident's answer to the clarifying question into the same demand.

        The answer fills what was missing: a place, or the matter itself. Nothing already known is lost:
        contacts accumulate, an officer's fields and a resolved location stay.
        """
        try:
            answer = clean_text(answer_text)
            if not answer:
                return demand
            combined_text = f"{demand.description}\n{answer}" if demand.description else answer
            combined = self.parse(combined_text, reporter_grid=demand.reporter_grid)
            merged = replace(demand, description=combined.description)
            answer_demand = self.parse(answer, reporter_grid=None)
            # Location: keep what was resolved from the text, unless only the reporter's grid was known.
            if demand.location.source in (None, "reporter"):
                if answer_demand.location.node is not None:
                    merged.location = answer_demand.location
                elif combined.location.node is not None:
                    merged.location = combined.location
            elif answer_demand.location.building and not demand.location.building:
                merged.location = replace(
                    demand.location,
                    building=answer_demand.location.building,
                    unit=answer_demand.location.unit or demand.location.unit,
                    room=answer_demand.location.room or demand.location.room,
                )
            if demand.classifier != "officer":
                merged.category, merged.subcategory = combined.category, combined.subcategory
                merged.confidence, merged.classifier = combined.confidence, combined.classifier
                merged.evidence = combined.evidence
                merged.needs_review = combined.needs_review
            if demand.urgency != "urgent" and combined.urgency == "urgent" and "urgent" not in demand.fields:
                merged.urgency, merged.urgency_reason = combined.urgency, combined.urgency_reason
            merged.contacts = list(demand.contacts) + [c for c in combined.contacts if c not in demand.contacts]
            merged.reporter_name = demand.reporter_name or combined.reporter_name
            merged.fields = {**combined.fields, **demand.fields}
            missing = []
            if not (demand.actionable or combined.actionable):
                missing.append(MISSING_MATTER)
            if merged.location.node is None:
                missing.append(MISSING_LOCATION)
            merged.missing = missing
            return merged
        except Exception:  # same contract as parse(): never raise into the dialog
            log.exception("demand merge failed; keeping the demand as it was")
            return demand


def _blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _address_parts(text: str, after: int) -> tuple[str | None, str | None, str | None, int]:
    """Building, unit and room, preferring the ones right after the place name; and where they end."""
    region = text[after : after + 40] if after else text
    offset = after if after else 0
    building = unit = room = None
    end = after
    triple = _TRIPLE.search(region)
    if triple:
        building, unit, room = triple.group(1), triple.group(2), triple.group(3)
        return building, unit, room, offset + triple.end()
    b = _BUILDING.search(region) or (None if not after else _BUILDING.search(text))
    if b:
        building = b.group(1)
        if b.string is region:
            end = max(end, offset + b.end())
    u = _UNIT.search(region) or (None if not after else _UNIT.search(text))
    if u:
        unit = u.group(1)
        if u.string is region:
            end = max(end, offset + u.end())
    r = _ROOM.search(region) or (None if not after else _ROOM.search(text))
    if r:
        room = r.group(1)
        if r.string is region:
            end = max(end, offset + r.end())
    elif building or unit:
        anchor_match = u if u is not None else b
        base = anchor_match.string
        tail = base[anchor_match.end() :]
        close = _ROOM_AFTER.search(tail)
        if close:
            room = close.group(1)
            if base is region:
                end = max(end, offset + anchor_match.end() + close.end())
        else:
            loose = _ROOM_LOOSE.search(tail[:30])
            if loose:
                room = loose.group(1)
    return building, unit, room, end
