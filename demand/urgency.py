"""Urgency: `urgent` when life, safety or property is at risk now, with the words that said so.

Rules are regular expressions rather than single words because urgency lives in combinations: a
manhole cover is a routine matter until it is *missing*; a wire is urgent when it is *down*. A trigger
preceded by a negation (没有煤气味) or set in the past (去年着火) does not count, and a message that
says the danger is over (火已经扑灭了) is not urgent on that trigger. A long letter needs a word saying
it is happening now. Counties can add words in the taxonomy file (`urgent_words`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# (label, alternatives). Patterns run on normalised text; keep them specific — precision matters because
# an urgent ticket pages people at night.
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # fire and smoke
    (
        "fire",
        (
            r"着火",
            r"起火",
            r"失火",
            r"火灾(?!隐患|风险|预防|演练|保险)",
            r"大火",
            r"烧起来",
            r"烧着了",
            r"火苗",
            r"火势",
            r"冒黑烟",
            r"浓烟",
            r"冒烟(?!.{0,2}[的问题投诉])",
            r"冒火花?",
            r"打火花",
            r"火光",
        ),
    ),
    # gas
    (
        "gas",
        (
            r"(?:煤气|燃气|天然气|液化气|沼气)(?:味|泄漏|泄露|漏了|在漏|漏气|管.{0,3}(?:破|断|裂|漏))",
            r"闻到.{0,6}(?:煤气|燃气|天然气|液化气)",
            r"(?:气罐|钢瓶|燃气灶|燃气表).{0,4}(?:漏|泄)",
            r"漏气",
            r"一氧化碳",
            r"煤气中毒",
        ),
    ),
    ("explosion", (r"爆炸", r"炸了", r"爆燃")),
    # structures
    (
        "collapse",
        (
            r"倒塌",
            r"坍塌",
            r"塌方",
            r"塌陷",
            r"垮塌",
            r"塌了",
            r"要塌",
            r"快塌",
            r"塌下来",
            r"摇摇欲坠",
            r"随时(?:会|可能)?(?:倒|塌|掉|垮)",
            r"倾斜.{0,4}要倒",
            r"(?:墙|楼|房|屋顶|围墙|挡土墙|天花板|吊顶).{0,4}(?:倒了|掉下来|砸)",
        ),
    ),
    (
        "falling",
        (
            r"高空坠物",
            r"高空抛物.{0,6}(?:砸|伤)",
            r"砸伤",
            r"砸到人",
            r"砸到了人",
            r"砸中",
            r"(?:广告牌|招牌|玻璃|外墙皮?|瓷砖|空调外机).{0,6}(?:掉下|坠落|要掉|快掉|摇晃)",
            r"大?树.{0,6}(?:倒了|倒下|压住|压在|砸)",
        ),
    ),
    # violence and self-harm
    (
        "violence",
        (
            r"打我",
            r"打人",
            r"殴打",
            r"家暴",
            r"家庭暴力",
            r"持刀",
            r"拿刀",
            r"拿着刀",
            r"砍人",
            r"砍伤",
            r"捅伤",
            r"捅人",
            r"行凶",
            r"杀人",
            r"要杀",
            r"抢劫",
            r"抢夺",
            r"绑架",
            r"性侵",
            r"猥亵",
            r"强奸",
            r"被打(?![击扫折卡针印开造])",
            r"打伤",
            r"动手打",
            r"正在打架",
            r"打起来了",
            r"群殴",
            r"斗殴",
            r"砸门",
            r"砸东西",
            r"扬言.{0,6}报复",
        ),
    ),
    (
        "self_harm",
        (
            r"跳楼",
            r"跳河",
            r"自杀",
            r"轻生",
            r"寻短见",
            r"想不开",
            r"割腕",
            r"喝了?农药",
            r"服毒",
            r"吃了?安眠药",
            r"不想活",
        ),
    ),
    # a person in danger
    (
        "medical",
        (
            r"晕倒",
            r"昏倒",
            r"昏迷",
            r"倒地不起",
            r"倒在地上",
            r"倒在路边",
            r"不省人事",
            r"没有?了?呼吸",
            r"没气了",
            r"心脏骤停",
            r"抽搐",
            r"口吐白沫",
            r"大出血",
            r"血流不止",
            r"流了很多血",
            r"重伤",
            r"受了?重伤",
            r"摔倒.{0,4}起不来",
            r"起不来了",
            r"中风",
            r"急救",
            r"救护车",
            r"打了?120",
            r"食物中毒",
            r"中毒",
            r"叫不醒",
            r"头晕.{0,3}呕吐",
            r"上吐下泻",
            r"(?:几个|多个|好几个)人.{0,4}(?:头晕|呕吐|晕倒|送医)",
        ),
    ),
    # someone who lives alone has not been seen: a welfare check cannot wait
    (
        "welfare",
        (
            r"敲门.{0,4}(?:没人应|没有人应|没反应|不应|没人开)",
            r"好几天没(?:出门|露面|见到人|见人)",
            r"(?:几|好几|两|三)天没(?:见|看到)(?:人|他|她)",
        ),
    ),
    # a fraud in progress: money can still be stopped
    ("fraud", (r"冒充.{0,16}(?:转了|转账|汇了|汇款)", r"(?:刚刚?|刚才|已经)(?:被骗|转了?.{0,6}(?:万|钱|元))")),
    (
        "water",
        (
            r"溺水",
            r"落水",
            r"掉进(?:河|水|塘|池|井)",
            r"掉到(?:河|水|塘|井)",
            r"被水冲走",
            r"洪水",
            r"水淹",
            r"淹了",
            r"淹到",
            r"进水.{0,4}(?:一米|半米|齐腰)",
            r"决堤",
            r"漫堤",
            r"溃堤",
            r"管涌",
            r"山洪",
            r"山体滑坡",
            r"泥石流",
            r"滑坡",
            r"(?:河水|洪水|水位|江水).{0,4}(?:涨|漫|上涨)",
            r"漫进(?:家|屋|小区|院子)",
            r"倒灌",
            r"(?:车库|家里|屋里|一楼).{0,3}进水",
        ),
    ),
    (
        "electric",
        (
            r"触电",
            r"电线.{0,6}(?:掉|断|垂|落地|打火|冒火|着火|拖地)",
            r"高压线.{0,6}(?:断|掉|垂|落)",
            r"漏电",
            r"电线杆.{0,4}(?:倒|歪|断)",
            r"变压器.{0,6}(?:冒烟|着火|爆|响)",
            r"电箱.{0,4}(?:冒烟|着火)",
        ),
    ),
    ("trapped", (r"被困", r"困在", r"困人", r"关在电梯", r"卡在电梯", r"电梯.{0,6}(?:困|关)", r"出不来了?")),
    (
        "manhole",
        (
            r"井盖.{0,6}(?:丢|没了|缺失|被偷|不见|没有|掉|塌|破|翻|碎|移位|松动|坏|敞|开着)",
            r"没有井盖",
            r"(?:下水道|窨井|井口).{0,4}(?:敞开|敞着|没盖)",
        ),
    ),
    (
        "missing_person",
        (
            r"走失",
            r"走丢",
            r"失踪",
            r"(?:孩子|小孩|儿子|女儿|老人|母亲|父亲|爸爸|妈妈|奶奶|爷爷|老伴).{0,4}(?:丢了|不见了|找不到)",
            r"找不到.{0,4}(?:孩子|小孩|儿子|女儿|老人|母亲|父亲|爸爸|妈妈|奶奶|爷爷|老伴)",
        ),
    ),
    (
        "hazmat",
        (
            r"化学品.{0,4}(?:泄漏|泄露|洒)",
            r"有毒气体",
            r"毒气",
            r"农药.{0,4}(?:泄漏|洒)",
            r"(?:危化品|危险品).{0,4}(?:泄漏|翻|倒)",
            r"(?:废水|废气|化工|化学|液氨|氯气|硫酸|盐酸).{0,6}(?:泄漏|泄露)",
        ),
    ),
    (
        "accident",
        (
            r"车祸",
            r"撞人",
            r"撞倒了?人",
            r"被(?:车|汽车|小车|轿车|货车|电动车|摩托车|三轮车)撞",
            r"撞伤",
            r"碾压",
            r"翻车",
            r"侧翻",
            r"追尾.{0,6}(?:受伤|伤员|流血)",
            r"撞倒",
        ),
    ),
    (
        "help",
        (
            r"救命",
            r"快来人",
            r"紧急求助",
            r"十万火急",
            r"生命危险",
            r"危及生命",
            r"人命关天",
            r"非常危险",
            r"马上要出人命",
            r"出人命",
        ),
    ),
)

# Words just before a trigger that cancel it. "不停/不断/不省" are not negations.
_NEGATION = re.compile(
    r"(?:没有|没|无|未|不是|并非|并没|不(?![停断住省知了少会让能])|别|防止|预防|避免|以防|谨防|担心会?|怕"
    r"|会不会|是否|有没有|如何|怎么)$"
)
# Something that happened before, or nearly happened, is not happening now.
_PAST = re.compile(
    r"(?:去年|前年|上个月|上月|以前|之前|曾经|前几年|几年前|当年|上次|遭了|遭遇了?|发生过|差点|差一点|险些)"
    r"[^，。！？\n]{0,8}$"
)
# A danger someone fears or imagines is a normal request about prevention ("担心…会起火", "真着火了怎么办").
_HYPOTHETICAL = re.compile(
    r"(?:担心|害怕|生怕|怕|万一|如果|要是|假如|一旦|防止|以免|预防|避免|真)[^，。！？\n]{0,18}$"
    r"|(?:会|可能会?|容易|易|引发|导致)$"
)
# The message itself says the danger is over.
_OVER = re.compile(
    r"^[^。！？\n]{0,10}(?:已经?|早已|已被)(?:被)?"
    r"(?:扑灭|灭了|熄灭|处理|解决|修好|修复|救出|送医|找到|抢修好|排除)"
)
_LOOKBEHIND = 6
# Emergencies are reported in a few lines. A long letter that mentions a fire or a beating is nearly
# always a complaint about something that happened; it is urgent only if it also says it is happening now.
LONG_MESSAGE = 200
_IMMEDIATE = re.compile(r"正在|刚刚|刚才|赶快|赶紧|快来|救命|请速|速来|此刻|就在现在|现在还在")


@dataclass(frozen=True)
class Urgency:
    """The urgency verdict and the words behind it."""

    level: str  # 'urgent' | 'normal'
    reason: str | None  # trigger words joined by 、, None when normal
    kinds: tuple[str, ...] = ()

    @property
    def urgent(self) -> bool:
        """True for urgent demands."""
        return self.level == "urgent"


class UrgencyDetector:
    """Finds urgent triggers in normalised text. Extra county words are plain literals."""

    def __init__(self, extra_words: Iterable[str] = ()) -> None:
        rules = [(label, "|".join(alternatives)) for label, alternatives in _RULES]
        extra = [re.escape(w.strip()) for w in extra_words if w and w.strip()]
        if extra:
            rules.append(("county", "|".join(extra)))
        self._rules = [(label, re.compile(pattern)) for label, pattern in rules]
        # One combined scan first: most messages are not urgent. The lookahead on the characters a
        # trigger can start with lets `re` skip most positions without trying ~200 alternatives there.
        combined = "|".join(f"(?:{pattern})" for _, pattern in rules)
        starts = _first_chars(combined)
        if starts:
            combined = f"(?=[{''.join(re.escape(ch) for ch in sorted(starts))}])(?:{combined})"
        self._any = re.compile(combined)

    def detect(self, text: str) -> Urgency:
        """The urgency of a message (normalised text)."""
        if not text or not self._any.search(text):
            return Urgency("normal", None)
        words: list[str] = []
        kinds: list[str] = []
        for label, pattern in self._rules:
            for match in pattern.finditer(text):
                before = text[max(0, match.start() - _LOOKBEHIND) : match.start()]
                after = text[match.end() : match.end() + 16]
                context = text[max(0, match.start() - 20) : match.start()]
                if _NEGATION.search(before) or _PAST.search(context) or _HYPOTHETICAL.search(context):
                    continue
                if _OVER.search(after):
                    continue
                if match.group() not in words:
                    words.append(match.group())
                if label not in kinds:
                    kinds.append(label)
        if not words:
            return Urgency("normal", None)
        if len(text) > LONG_MESSAGE and not _IMMEDIATE.search(text):
            return Urgency("normal", None)
        return Urgency("urgent", "、".join(words[:5]), tuple(kinds))


def _first_chars(pattern: str) -> set[str] | None:
    """The characters a match of `pattern` can start with; None when that cannot be bounded."""
    try:
        from re import _constants as c  # type: ignore[attr-defined]  # CPython internals: fall back if they move
        from re import _parser as sre  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other Pythons
        return None

    def first(items: list) -> tuple[set[str], bool] | None:
        # (characters, can_be_empty) for a sequence of parsed items
        chars: set[str] = set()
        for op, arg in items:
            if op is c.LITERAL:
                return chars | {chr(arg)}, False
            if op is c.IN:
                found = set()
                for kind, value in arg:
                    if kind is c.LITERAL:
                        found.add(chr(value))
                    elif kind is c.RANGE and value[1] - value[0] < 64:
                        found.update(chr(x) for x in range(value[0], value[1] + 1))
                    else:
                        return None
                return chars | found, False
            if op is c.SUBPATTERN:
                sub = first(list(arg[-1]))
            elif op is c.BRANCH:
                subs = [first(list(branch)) for branch in arg[1]]
                if any(x is None for x in subs):
                    return None
                sub = (set().union(*(x[0] for x in subs)), any(x[1] for x in subs))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                inner = first(list(arg[2]))
                sub = None if inner is None else (inner[0], inner[1] or arg[0] == 0)
            elif op in (c.ASSERT, c.ASSERT_NOT, c.AT):
                continue  # zero-width: look at what follows
            else:
                return None
            if sub is None:
                return None
            chars |= sub[0]
            if not sub[1]:
                return chars, False
        return chars, True

    try:
        result = first(list(sre.parse(pattern)))
    except Exception:  # any surprise in the internals: no prefilter, same results, just slower
        return None
    if result is None or result[1]:
        return None
    return result[0]


_default: UrgencyDetector | None = None


def detect_urgency(text: str) -> Urgency:
    """Urgency with the built-in rules only."""
    global _default
    if _default is None:
        _default = UrgencyDetector()
    return _default.detect(text)
