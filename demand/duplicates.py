"""Is a new report the same job as an open ticket? Pure functions over plain values (no Flask, no database).

A wrong automatic merge loses a resident's demand; a missed one only costs a second ticket. So `merge`
needs every sign at once:

- the same kind of matter: the same service_code when both have one (Open311), else the same subcategory;
- the same spot: the same place down to the building (and unit) when buildings are named, the same named
  spot (an estate, a market, a school; not an area such as a community or grid, nor a road) when neither
  names one,
  or, when both sides have coordinates, within `merge_distance_m`;
- the same problem: the words that describe the problem (place names, numbers and filler removed) name
  the same things (电梯, 井盖, 楼道灯 …) and read alike.

Anything weaker that still looks alike is a `suggest`ion for staff ("可能重复"); different service codes, a
different building or unit, a different grid or coordinates far apart are `different` outright.

The caller (the ticket workflow) turns a parsed Demand and its candidate tickets into `Facts` and asks
`compare` or `rank`; thresholds come from the `duplicates:` section of config/routing.yaml.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml

from demand.brackets import parse_fields
from demand.normalize import match_text

MERGE = "merge"
SUGGEST = "suggest"
DIFFERENT = "different"

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "routing.yaml"

K = TypeVar("K")


@dataclass(frozen=True)
class DuplicateConfig:
    """Thresholds; see the `duplicates:` section of config/routing.yaml for what each one means."""

    window_days: float = 3.0
    merge_similarity: float = 0.6
    suggest_similarity: float = 0.3
    merge_distance_m: float = 30.0
    suggest_distance_m: float = 150.0
    max_suggestions: int = 5


@dataclass(frozen=True)
class Facts:
    """What the scorer knows about one report or one ticket (plain values, copied by the caller)."""

    description: str = ""
    category: str | None = None
    subcategory: str | None = None
    service_code: str | None = None  # only when the reporter chose one (Open311), or the ticket's own code
    place: str | None = None
    node: str | None = None
    grid: str | None = None
    building: str | None = None
    unit: str | None = None
    location_text: str | None = None
    lat: float | None = None
    lng: float | None = None
    created_at: datetime | None = None
    matter: str | None = None  # an officer's 【事项】, which says the problem without the address


@dataclass(frozen=True)
class Verdict:
    """`decision` is merge | suggest | different; `reason` is shown to staff (Chinese).

    `score` (0..1, for ordering suggestions) is the problem similarity weighted by how sure the place is;
    the thresholds of the decision apply to `problem_similarity` itself.
    """

    decision: str
    score: float
    reason: str
    problem_similarity: float = 0.0
    things: tuple[str, ...] = field(default=())  # the problem things both sides name, for the console

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "score": round(self.score, 3), "reason": self.reason}


# ---- configuration ------------------------------------------------------------------------------------------


def load_duplicate_config(path: str | Path | None = None) -> DuplicateConfig:
    """The `duplicates:` section of routing.yaml; missing keys keep their defaults, bad values raise."""
    data = yaml.safe_load(Path(path or DEFAULT_CONFIG_PATH).read_text(encoding="utf-8")) or {}
    section = data.get("duplicates") or {}
    defaults = DuplicateConfig()
    values: dict[str, Any] = {}
    for name in DuplicateConfig.__dataclass_fields__:
        raw = section.get(name, getattr(defaults, name))
        try:
            values[name] = int(raw) if name == "max_suggestions" else float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"duplicates.{name} must be a number, got {raw!r}") from None
        if values[name] < 0:
            raise ValueError(f"duplicates.{name} must not be negative")
    config = DuplicateConfig(**values)
    if config.suggest_similarity > config.merge_similarity:
        raise ValueError("duplicates.suggest_similarity must not exceed merge_similarity")
    if config.merge_distance_m > config.suggest_distance_m:
        raise ValueError("duplicates.merge_distance_m must not exceed suggest_distance_m")
    return config


# ---- building Facts -----------------------------------------------------------------------------------------


def service_code_of(category: str | None, subcategory: str | None) -> str | None:
    """The Open311 service_code of a category pair ("一级/二级"), as the Open311 API publishes it."""
    if not category:
        return None
    return f"{category}/{subcategory}" if subcategory else category


def facts_from_demand(
    demand: Any,
    *,
    service_code: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    created_at: datetime | None = None,
) -> Facts:
    """Facts of a parsed demand.Demand (duck-typed: only its attributes are read)."""
    location = demand.location
    fields = getattr(demand, "fields", None) or {}
    return Facts(
        description=demand.description or "",
        category=demand.category,
        subcategory=demand.subcategory,
        service_code=service_code,
        place=location.place,
        node=location.node,
        grid=location.grid,
        building=location.building,
        unit=location.unit,
        location_text=location.text,
        lat=lat,
        lng=lng,
        created_at=created_at,
        matter=fields.get("matter"),
    )


# ---- problem words ------------------------------------------------------------------------------------------

# Things a report can be about, each with the ways residents write it. Longest spellings are matched first,
# so 楼道灯 is not read as 灯 and 拉电线 not as 电线. A thing is what a crew is sent to fix.
_THINGS: dict[str, tuple[str, ...]] = {
    "楼道灯": ("楼道灯", "声控灯", "感应灯", "楼道的灯", "楼道里的灯", "楼道里灯", "楼梯灯"),
    "路灯": ("路灯", "路灯杆", "照明", "黑灯瞎火"),
    "红绿灯": ("红绿灯", "信号灯", "交通灯"),
    "灯": ("灯",),
    "电梯": ("电梯",),
    # 楼下水管 / 楼下水道: "4栋楼下水管破了" once the building number is gone, not 下水管.
    "下水道": (
        "下水道",
        "楼下水道",
        "下水管",
        "下水",
        "排水管",
        "排水沟",
        "污水管",
        "地漏",
        "厕所往外返水",
        "厕所冲不下去",
    ),
    "化粪池": ("化粪池", "粪水"),
    "井盖": ("井盖", "窨井", "检查井", "雨篦子"),
    "水管": ("水管", "楼下水管", "管道", "自来水管", "供水管"),
    "水质": ("水质", "发黄", "黄黄的", "铁锈味", "水浑"),
    "停水": ("停水", "没水", "断水"),
    "水压": ("水压",),
    "停电": ("停电", "没电", "断电", "跳闸"),
    "水费": ("水费",),
    "物业费": ("物业费",),
    "建筑垃圾": ("建筑垃圾", "渣土"),
    "垃圾": ("垃圾", "垃圾桶", "垃圾站", "清运", "果皮箱"),
    "飞线充电": ("飞线充电", "拉电线", "拉线", "电动车充电", "电瓶车充电", "给电动车充电", "给电瓶车充电", "在充电"),
    "充电桩": ("充电桩", "充电棚", "充不了电"),
    "杂物": ("杂物", "堆物", "纸箱", "旧家具", "堆放"),
    "外墙": ("外墙", "瓷砖", "墙砖", "外墙砖"),
    "墙皮": ("墙皮", "抹灰", "墙面"),
    "违建": ("违建", "违章", "搭建", "私搭乱建", "乱搭乱建", "彩钢棚", "铁皮房", "棚子", "加盖", "扩建", "封阳台"),
    "防水": ("防水",),
    "水箱": ("水箱", "二次供水"),
    "门禁": ("门禁", "单元门", "门锁", "刷卡"),
    "消防通道": ("消防通道",),
    "消防栓": ("消防栓",),
    "停车": ("停车", "乱停", "停满车", "车乱停", "停满了车"),
    "摊贩": ("摆摊", "摊贩", "占道经营", "占道", "小贩", "卖菜", "卖水果"),
    "油烟": ("油烟",),
    "噪音": ("噪音", "噪声", "吵", "太大声", "声音太大", "扰民", "打桩", "电钻", "音响"),
    "广场舞": ("广场舞",),
    "广告": ("广告屏", "小广告", "广告"),
    "坑洼": ("坑洼", "坑坑洼洼", "大坑", "全是坑", "塌陷", "塌了", "坑"),
    "积水": ("积水", "水坑"),
    "地砖": ("地砖",),
    "减速带": ("减速带",),
    "树": ("树枝", "修剪", "大树", "树"),
    "电线": ("电线", "线路"),
    "狗": ("养狗", "遛狗", "狗", "犬"),
    "家禽": ("养鸡", "鸽子", "家禽", "活禽"),
    "烧纸": ("烧纸",),
    "焚烧": ("烧垃圾", "焚烧", "冒黑烟", "被人烧了"),
    "电表箱": ("电表箱", "电表", "电箱"),
    "窗户": ("窗户", "玻璃"),
    "水塘": ("水塘", "池塘"),
    "施工": ("施工", "挖路", "围挡", "工地"),
    "维保": ("维保", "保养", "年检"),
    "燃气": ("煤气罐", "液化气", "燃气", "煤气", "天然气"),
    "食品": ("三无食品", "食品", "生产日期"),
    "计量": ("缺斤少两",),
    "盗窃": ("偷", "盗"),
    "": ("偷偷", "悄悄"),  # "secretly": how, not what (an empty name is dropped)
    "绿化": ("绿化带", "绿化", "种菜"),
    "餐馆": ("餐馆", "饭店"),
}

# What is wrong with the thing. A specific state on both sides must agree for a merge; "broken" is the
# generic state every report has, so it weighs little.
_STATES: dict[str, tuple[str, ...]] = {
    "堵": ("堵", "返水", "冲不下去", "往上返", "往外冒", "漫"),
    "漏": ("漏水", "漏雨", "滴水", "渗水", "漏", "泡了"),
    "脱落": ("脱落", "往下掉", "掉下来", "掉了", "掉"),
    "满": ("满了", "塞满", "溢出", "堆成山", "满溢", "满"),
    "困人": ("困人", "被困", "出不来", "卡在"),
    "异响": ("异响", "咣当", "哐哐响", "响"),
    "臭": ("臭", "反味", "异味", "味道"),
    "丢失": ("丢失", "丢了", "没了", "丢"),
    "松动": ("松动", "松了", "松"),
    "爆裂": ("爆裂", "爆了", "破裂", "破了", "爆"),
    "坏": ("坏了", "坏", "不亮", "不动", "失灵", "停运", "停了", "故障", "破损", "碎", "没反应", "灭", "刷不开"),
}
_GENERIC_STATE = "坏"

# Words that say who, where or when, or are filler: never part of the problem.
_FILLER = re.compile(
    "你好|您好|在吗|请问|谢谢|麻烦|紧急|快来人|反映一下|反映|问题|一下|我们|我家|我妈|我是|我|你们|他们|有人|"
    "有户人家|人家|住户|这里|那里|这个|那个|那盏|那段|那几盏|这边|那边|旁边|边上|附近|门口|门前|大门口|大门|东门|"
    "东头|东段|西段|楼下|楼上|楼顶|顶楼|顶层|下面|上面|里面|一楼|小区|社区|物业|业主|居民|老人|小孩|孩子|"
    "今天|昨天|晚上|早上|中午|最近|好几天|几天|两天|一个星期|一个月|天天|一直|老是|又|也|还|都|就|了|的|得|地|着|"
    "啊|吧|呢|吗|哦|嗯|很|太|好|多|不行|怎么办|没人管|没人|不管|人"
)
# Numbers with their units (buildings, floors, days, metres) and bare numbers.
_NUMBERS = re.compile(r"\d+\s*(?:号楼|号院|号门|号|栋|幢|座|单元|室|层|楼|户|组|期|米|天|点|分钟|个月|年)?")
# Administrative and estate names the parser may not have resolved ("白沙县", "新华社区", "锦绣家园").
_ADMIN = re.compile(r"[\u4e00-\u9fff]{1,4}?(?:县|镇|乡|街道|社区|村委会|小区|花园|家园|公寓)")
_CJK = re.compile(r"[\u4e00-\u9fff]")

_VOCAB = sorted(
    [(word, "thing", name) for name, words in _THINGS.items() for word in words]
    + [(word, "state", name) for name, words in _STATES.items() for word in words],
    key=lambda item: len(item[0]),
    reverse=True,
)
_VOCAB_PATTERN = re.compile("|".join(re.escape(word) for word, _, _ in _VOCAB))
_VOCAB_LOOKUP = {word: (kind, name) for word, kind, name in _VOCAB}


@dataclass(frozen=True)
class Problem:
    """The problem a text describes: things named, states named, and the leftover character pairs."""

    things: frozenset[str]
    states: frozenset[str]
    rest: frozenset[str]


def problem_of(facts: Facts) -> Problem:
    """The problem words of a report: its officer's 事项 when stated, else its text without the address."""
    text = facts.matter or _matter_of(facts.description) or facts.description or ""
    strip = [s for s in (facts.location_text, facts.place) if s]
    return problem_words(text, strip)


def _matter_of(text: str) -> str | None:
    fields = parse_fields(text or "")
    return fields.get("matter")


def problem_words(text: str, strip: Iterable[str] = ()) -> Problem:
    """Things, states and leftover bigrams of `text` once place words, numbers and filler are removed."""
    text = match_text(text or "")
    for word in sorted((w for w in strip if w), key=len, reverse=True):
        text = text.replace(match_text(word), " ")
    text = _NUMBERS.sub(" ", text)
    text = _ADMIN.sub(" ", text)
    things: set[str] = set()
    states: set[str] = set()

    def take(match: re.Match[str]) -> str:
        kind, name = _VOCAB_LOOKUP[match.group(0)]
        if name:
            (things if kind == "thing" else states).add(name)
        return " "

    text = _VOCAB_PATTERN.sub(take, text)
    text = _FILLER.sub(" ", text)
    rest: set[str] = set()
    for chunk in re.split(r"[^\u4e00-\u9fff]+", text):
        if len(chunk) >= 2:
            rest.update(chunk[i : i + 2] for i in range(len(chunk) - 1))
    # A generic "broken" adds nothing next to a specific state.
    if len(states) > 1:
        states.discard(_GENERIC_STATE)
    return Problem(frozenset(things), frozenset(states), frozenset(rest))


def problem_similarity(a: Problem, b: Problem) -> float:
    """0..1: mostly whether the same things and states are named, a little whether the rest reads alike."""
    rest = _jaccard(a.rest, b.rest)
    if not (a.things or a.states) and not (b.things or b.states):
        return rest
    things = _jaccard(a.things, b.things) if (a.things or b.things) else 0.0
    states = _jaccard(a.states, b.states) if (a.states or b.states) else 1.0
    if states == 0.0 and _GENERIC_STATE in (a.states | b.states):
        states = 0.5  # "broken" against a specific state: compatible, not the same
    return 0.6 * things + 0.25 * states + 0.15 * rest


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# ---- places -------------------------------------------------------------------------------------------------


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    rlat1, rlat2 = math.radians(lat1), math.radians(lat2)
    dlat, dlng = rlat2 - rlat1, math.radians(lng2 - lng1)
    h = math.sin(dlat / 2) ** 2 + math.cos(rlat1) * math.cos(rlat2) * math.sin(dlng / 2) ** 2
    return 6_371_000.0 * 2 * math.asin(min(1.0, math.sqrt(h)))


def _same_place(a: Facts, b: Facts) -> bool:
    if a.node and a.node == b.node:
        return True
    if a.place and b.place:
        # 幸福里 (the community's short name) and 幸福里小区 (its estate) are written for the same spot.
        short, long_ = sorted((a.place, b.place), key=len)
        return len(short) >= 2 and long_.startswith(short)
    return False


# Place names that are areas (a community, a grid, a village) or lines (a street, a road): "the same place"
# there is not one spot, and two lamps out on one long road are two jobs.
_AREA_SUFFIXES = ("县", "镇", "乡", "街道", "社区", "网格", "村", "居委会", "村委会", "路", "街", "大道", "巷", "弄")


def _is_spot(place: str | None) -> bool:
    return bool(place) and not place.endswith(_AREA_SUFFIXES) and not re.search(r"\d+(?:网格|组)$", place)


@dataclass(frozen=True)
class _Where:
    level: str  # building | near | spot | place | close | grid | unknown | conflict
    reason: str
    weight: float


def _where(new: Facts, old: Facts, config: DuplicateConfig) -> _Where:
    if new.building and old.building and new.building != old.building:
        return _Where("conflict", f"楼栋不同（{old.building}号楼 / {new.building}号楼）", 0.0)
    if new.unit and old.unit and new.unit != old.unit:
        return _Where("conflict", f"单元不同（{old.unit}单元 / {new.unit}单元）", 0.0)
    if None not in (new.lat, new.lng, old.lat, old.lng):
        metres = distance_m(new.lat, new.lng, old.lat, old.lng)  # type: ignore[arg-type]
        if metres > config.suggest_distance_m:
            return _Where("conflict", f"相距约{metres:.0f}米", 0.0)
        if metres <= config.merge_distance_m:
            return _Where("near", f"相距约{metres:.0f}米", 1.0)
        return _Where("close", f"相距约{metres:.0f}米", 0.8)
    if new.grid and old.grid and new.grid != old.grid:
        return _Where("conflict", "不在同一网格", 0.0)
    if _same_place(new, old):
        name = old.place or new.place or "同一地点"
        if new.building and old.building:
            unit = f"{old.unit}单元" if old.unit and new.unit else ""
            return _Where("building", f"同一地点同一楼栋（{name}{old.building}号楼{unit}）", 1.0)
        if new.building or old.building:
            return _Where("place", f"同一地点（{name}），一方未写楼栋", 0.8)
        if _is_spot(new.place) and _is_spot(old.place):
            # Neither names a building, and the place is a spot (an estate, a market, a street), not an area.
            return _Where("spot", f"同一地点（{name}），均未写楼栋", 0.9)
        return _Where("place", f"同一地点（{name}）", 0.85)
    if (new.place or new.node) and (old.place or old.node) and not (new.grid and new.grid == old.grid):
        return _Where("conflict", f"地点不同（{old.place or '—'} / {new.place or '—'}）", 0.0)
    if new.grid and new.grid == old.grid:
        return _Where("grid", "同一网格，地点未写明", 0.6)
    return _Where("unknown", "地点未写明", 0.5)


# ---- the decision -------------------------------------------------------------------------------------------


def compare(new: Facts, old: Facts, config: DuplicateConfig | None = None, now: datetime | None = None) -> Verdict:
    """Is `new` (a report just parsed) the same job as `old` (an open ticket)?"""
    config = config or DuplicateConfig()
    if new.service_code and old.service_code and new.service_code != old.service_code:
        return Verdict(DIFFERENT, 0.0, f"服务类型不同（{old.service_code} / {new.service_code}）")
    reference = now or new.created_at
    if reference and old.created_at and reference - old.created_at > timedelta(days=config.window_days):
        return Verdict(DIFFERENT, 0.0, f"原工单已超过{config.window_days:g}天")
    where = _where(new, old, config)
    if where.level == "conflict":
        return Verdict(DIFFERENT, 0.0, where.reason)
    a, b = problem_of(old), problem_of(new)
    similarity = problem_similarity(a, b)
    shared = tuple(sorted(a.things & b.things))
    score = round(similarity * where.weight, 3)
    if new.service_code and old.service_code:
        same_kind = True  # equal codes (different ones returned above)
    else:
        same_kind = bool(new.subcategory) and new.subcategory == old.subcategory and new.category == old.category
    same_things = bool(a.things) and a.things == b.things
    # Specific states (堵, 漏, 困人 …) on both sides must agree; "broken" on one side is not a disagreement.
    specific_a, specific_b = a.states - {_GENERIC_STATE}, b.states - {_GENERIC_STATE}
    states_agree = not (specific_a and specific_b) or bool(specific_a & specific_b)
    what = "、".join(shared)
    if (
        same_kind
        and where.level in ("building", "near", "spot")
        and same_things
        and states_agree
        and similarity >= config.merge_similarity
    ):
        return Verdict(MERGE, score, f"{where.reason}，同类问题，描述相近（{what}）", similarity, shared)
    if similarity >= config.suggest_similarity and (shared or not (a.things or b.things)):
        kind = "" if same_kind else "，分类不同"
        about = f"（{what}）" if what else ""
        return Verdict(SUGGEST, score, f"{where.reason}，问题相近{about}{kind}", similarity, shared)
    if a.things and b.things and not shared:
        reason = f"问题不同（{'、'.join(sorted(a.things))} / {'、'.join(sorted(b.things))}）"
    else:
        reason = "问题描述不同"
    return Verdict(DIFFERENT, score, reason, similarity, shared)


def rank(
    new: Facts,
    candidates: Iterable[tuple[K, Facts]],
    config: DuplicateConfig | None = None,
    now: datetime | None = None,
) -> list[tuple[K, Verdict]]:
    """Candidates that are not `different`, merges first, then by score; at most `max_suggestions`.

    `candidates` pairs each ticket's key (id, number, the row itself) with its Facts; the key comes back.
    """
    config = config or DuplicateConfig()
    verdicts = [(key, compare(new, facts, config, now)) for key, facts in candidates]
    kept = [(key, v) for key, v in verdicts if v.decision != DIFFERENT]
    kept.sort(key=lambda kv: (kv[1].decision != MERGE, -kv[1].score))
    return kept[: config.max_suggestions]


# ---- the resident's "不是同一件事" -------------------------------------------------------------------------

# A reply to a join message that says the join was wrong. 是不是… asks, it does not deny. The text is in
# matching form, where 一栋 has become 1栋.
_DENIAL = re.compile(
    r"(?<!是)不是(?:同[一1]|[一1])(?:件|个|回|码|样|栋|座|个楼|个地方|个小区)?(?:事|事情|问题|地方|楼|的)?"
    r"|(?<!是)不是(?:这|那)(?:件|个)(?:事|事情|问题)"
    r"|(?<!是)不是(?:我|我们)(?:说|反映|报)的"
    r"|两(?:码|回|件)事|不是一码事|不是一回事"
    r"|(?:跟|和|与)(?:那个|这个|那件|这件|它|那|这)?(?:事|问题)?(?:不一样|不相同|不同|没关系)"
    r"|(?:合并|并|搞|弄)错了?"
)
_CONFIRM = re.compile(r"(?<!不)是同一|是一回事|没错|对的|是的")


def denies_same(text: str) -> bool:
    """True when a reporter's reply to "已并入工单…" says it is a different matter ("不是同一件事")."""
    clean = match_text(text or "").replace(" ", "")
    if not clean or not _DENIAL.search(clean):
        return False
    # "是同一件事，不是两回事" affirms; a denial that also confirms is left to staff.
    return not (_CONFIRM.search(clean) and not clean.startswith(("不是", "不对")))
