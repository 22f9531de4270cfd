"""Urgency: `urgent` when life, safety or property is at risk now, with the words that said so.

Urgency is judged per **danger class** (fire/gas, structural, violence, injury/medical, missing or
vulnerable person, flooding, animal attack, plus a fraud in progress and plain calls for help). Each class
has two kinds of patterns:

- *triggers*: the danger is here by itself (着火, 被困, 晕倒, 井盖丢了);
- *hazards*: a condition that is urgent only with a qualifier saying it is **already happening**, the
  thing is **still in use** or people are exposed (车还在过, 人还住在里面, 下面是人行道), or it is
  **getting worse** (越裂越大, 还在涨). A wall crack told as a years-old nuisance is a normal request; the
  same crack with people under it in the rain is not.

Around every match: a negation just before it (没有煤气味), the past (去年着火), a fear or hypothesis
(担心会起火), a message saying it is over (火已经扑灭了) and hearsay of something past (听说前几天…)
cancel it. Violent words in a long-running complaint (吵得我想杀人, 天天砸东西) are the resident's
exasperation, not a fight happening now; a scam call the resident saw through is a warning, not an
emergency. A long letter needs a word saying it is happening now. The verdict carries the reason in
words staff can read (`reason`), e.g. "结构安全：裂开了（仍在使用：车子还在）". Counties can add
literal triggers in the taxonomy file (`urgent_words`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Qualifiers for hazards (see the module docstring). Precision matters: an urgent ticket pages people.
_IN_USE = (
    r"还在(?!等|问|找|申请|排队|办|催|反映)|仍在|仍有|仍然|照样|照常|照旧|继续|正常通行|通行|人来人往|来来往往"
    r"|还住|住着|还睡|睡在|不肯出来|不肯搬|没撤|未撤离|尚未|没搬|还有人|有人在下面|从下面走|在下面走|天天走"
    r"|每天走|每天.{0,6}(?:过|走|经过)|下面是|下方是|底下是|下面就是|楼下是|楼下就是|下面住|坡下住|山脚.{0,6}住"
    r"|下面还住|车子?还在|车还在|在过|在上面走|从上面走|上下班的人|在旁边玩|放学.{0,6}(?:过|走)|人在下面|有人在"
)
_WORSE = (
    r"越来越|越[^，。！？\n]{1,3}越|一天比一天|还在(?:涨|往|掉|冒|裂|塌|陷|渗|扩)|不断|持续|扩大|加剧|更大了"
    r"|更宽|又塌|又裂"
    r"|又掉|比.{0,8}(?:多|大|宽|厉害)了?|直往下|一直(?:在)?(?:往下|晃|渗|冒|响|涨)"
)
_NOW = (
    r"正在|刚才|刚刚|现在|马上|眼看|快要|就要|要打起来|快打起来|快来|赶紧|赶快|快派|快点|速来|请速|此刻|立刻"
    r"|救命|已经|一直"
)

# (class, Chinese label for the reason, triggers, hazards). Old single-rule labels are kept as `kinds`.
_CLASSES: tuple[tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], ...] = (
    (
        "fire_gas",
        "火灾/燃气",
        (
            (
                "fire",
                r"着火|起火|失火|火灾(?!隐患|风险|预防|演练|保险)|大火|烧起来|烧着了|火苗|火势|冒黑烟|浓烟"
                r"|冒烟(?!.{0,2}[的问题投诉])|冒火花?|打火花|火光|烧焦",
            ),
            (
                "gas",
                r"(?:煤气|燃气|天然气|液化气|沼气)(?:味|泄漏|泄露|漏了|在漏|漏气|管.{0,3}(?:破|断|裂|漏))"
                r"|闻到.{0,6}(?:煤气|燃气|天然气|液化气)"
                r"|(?:气罐|钢瓶|燃气灶|燃气表|燃气管子?|煤气管子?).{0,4}(?:漏|泄|破)"
                r"|漏气|一氧化碳|煤气中毒",
            ),
            ("explosion", r"爆炸|炸了|爆燃"),
            (
                "electric",
                r"触电|电线.{0,6}(?:掉|断|垂|落地|打火|冒火|着火|拖地)|高压线.{0,6}(?:断|掉|垂|落)|漏电"
                r"|电线杆.{0,4}(?:倒|断)|变压器.{0,6}(?:冒烟|着火|爆|响)|(?:电箱|配电箱).{0,4}(?:冒烟|着火|冒火)",
            ),
            (
                "hazmat",
                r"化学品.{0,4}(?:泄漏|泄露|洒)|有毒气体|毒气|农药.{0,4}(?:泄漏|洒)"
                r"|(?:危化品|危险品).{0,4}(?:泄漏|翻|倒)"
                r"|(?:废水|废气|化工|化学|液氨|氯气|硫酸|盐酸).{0,6}(?:泄漏|泄露)",
            ),
        ),
        (("electric", r"电线杆.{0,6}(?:歪|斜)|电线.{0,6}垂"),),
    ),
    (
        "structural",
        "结构安全",
        (
            (
                "collapse",
                r"倒塌|坍塌|塌方|垮塌|要塌|快塌|塌下来|摇摇欲坠|随时(?:会|可能)?(?:倒|塌|掉|垮)|倾斜.{0,4}要倒"
                r"|(?:墙|楼|房|屋顶|围墙|挡土墙|天花板|吊顶|篮球架|架子).{0,4}(?:倒了|掉下来|砸)",
            ),
            (
                "falling",
                r"高空坠物|高空抛物.{0,6}(?:砸|伤)|砸伤|砸到人|砸到了人|砸中"
                r"|(?:广告牌|招牌|玻璃|外墙皮?|瓷砖|空调外机).{0,6}(?:掉下|坠落|要掉|快掉|摇晃)"
                r"|大?树.{0,6}(?:倒了|倒下|压住|压在|砸)",
            ),
            (
                "manhole",
                r"井盖.{0,6}(?:丢|没了|缺失|被偷|不见|没有|掉|塌|破|翻|碎|移位|敞|开着)|没有井盖"
                r"|(?:下水道|窨井|井口).{0,4}(?:敞开|敞着|没盖)",
            ),
        ),
        (
            # A structure that is cracking, bulging, sinking or shedding pieces.
            (
                "structure",
                r"(?:桥|桥面|桥墩|引桥|天桥|伸缩缝|墙|墙体|山墙|挡墙|挡土墙|围墙|外墙|墙皮"
                r"|瓷砖|保温[层板]|水泥皮|水泥"
                r"|楼梯|梯板|台阶|栏杆|护栏|阳台|屋顶|房子?|土屋|土房|土坯房?|楼板|楼|招牌|广告牌|脚手架|塔吊"
                r"|大?树"
                r"|山坡|山体|坡|坝|坝子|坝体|堤|河堤|路面|地面|地)[^，。！？\n]{0,10}"
                r"(?:裂|鼓|外鼓|下沉|下陷|塌|陷|歪|倾斜|松了|松动|晃|掉(?!皮|漆|灰)|脱落|掀|露出|断|悬空|锈断|掏空|翘)",
            ),
            (
                "falling",
                r"往下掉(?!皮|漆|灰)|掉下来|掉砖|掉渣|掉土|掉块|要掉不掉"
                r"|(?:瓷砖|砖头|碎块|水泥块?).{0,4}掉(?!皮|漆|灰)",
            ),
        ),
    ),
    (
        "violence",
        "暴力冲突",
        (
            (
                "violence",
                r"打我|打人|殴打|家暴|家庭暴力|持刀|拿刀|拿着刀|砍人|砍伤|捅伤|捅人|行凶|杀人|要杀|抢劫|抢夺|绑架"
                r"|性侵|猥亵|强奸|被打(?![击扫折卡针印开造])|打伤|动手打|正在打架|打起来了|群殴|斗殴|砸门|砸东西"
                r"|扬言.{0,6}报复|在打(?:他|她)|打医生|在追人|踢(?:她|他)|弄死|打死",
            ),
            ("self_harm", r"跳楼|跳河|自杀|轻生|寻短见|想不开|割腕|喝了?农药|服毒|吃了?安眠药|不想活"),
            # A quarrel with weapons at hand, or about to come to blows.
            (
                "quarrel",
                r"(?:吵|争执|争吵|对峙|推推搡搡|推搡|围着|理论)[^。！？\n]{0,30}"
                r"(?:刀|棍|钢管|铁管|锄头|扁担|扳手|砖头|铁锹|斧头|动手|打起来|拼命)"
                r"|(?:刀|棍|钢管|铁管|锄头|扁担|扳手|砖头|铁锹|斧头)[^。！？\n]{0,20}(?:吵|争执|对峙|动手|打起来)",
            ),
        ),
        (),
    ),
    (
        "medical",
        "伤病急救",
        (
            (
                "medical",
                r"晕倒|昏倒|昏迷|倒地不起|倒在地上|倒在路边|不省人事|没有?了?呼吸|没有?了?意识|失去意识|没气了"
                r"|心脏骤停"
                r"|抽搐|抽起来|口吐白沫|大出血|血流不止|流了很多血|流了一地血|在流血|重伤|受了?重伤"
                r"|摔倒.{0,4}起不来"
                r"|起不来了|站不起来|中风|急救|心肺复苏|按胸口|人工呼吸"
                r"|(?<!都)救护车(?!.{0,3}(?:都|也)?(?:进不|开不|过不|没法))"
                r"|打了?120|食物中毒|中毒|叫不醒|叫.{0,3}没反应|叫.{0,3}不怎么应|头晕.{0,3}呕吐|上吐下泻|嘴唇发紫"
                r"|噎住"
                r"|呼吸困难|(?:几个|多个|好几个|十几个)人.{0,4}(?:头晕|呕吐|晕倒|送医)",
            ),
            (
                "accident",
                r"车祸|撞人|撞倒了?人|被(?:车|汽车|小车|轿车|货车|电动车|摩托车|三轮车)撞|撞伤|碾压|翻车|侧翻"
                r"|翻到沟里|追尾.{0,6}(?:受伤|伤员|流血)|撞倒|(?<!被)撞了",
            ),
        ),
        (),
    ),
    (
        "vulnerable",
        "人员走失/被困",
        (
            (
                "welfare",
                r"敲门.{0,4}(?:没人应|没有人应|没反应|不应|没人开)|好几天没(?:出门|露面|见到人|见人|开门)"
                r"|(?:几|好几|两|三)天没(?:见|看到|开门)(?:人|他|她)?|喊.{0,4}(?:也不应|不答应)",
            ),
            (
                "trapped",
                r"被困|困在|困人|关在电梯|卡在电梯|电梯.{0,6}(?:困|关)|出不来了?|电梯.{0,10}卡住"
                r"|(?:里面|里头).{0,4}有人在喊",
            ),
            (
                "missing_person",
                r"走失|走丢|失踪"
                r"|(?:孩子|小孩|儿子|女儿|老人|母亲|父亲|爸爸|妈妈|奶奶|爷爷|老伴).{0,4}(?:丢了|不见了|找不到)"
                r"|找不到.{0,4}(?:孩子|小孩|儿子|女儿|老人|母亲|父亲|爸爸|妈妈|奶奶|爷爷|老伴)"
                r"|(?:到现在|还)没(?:回家|回来)[^。！？\n]{0,12}(?:找|天快黑|天黑)"
                r"|人(?:找不到|不见)了",
            ),
        ),
        (),
    ),
    (
        "flooding",
        "洪涝/地质",
        (
            (
                "water",
                r"溺水|落水|掉进(?:河|水|塘|池|井)|掉到?(?:河|水|塘|井)里"
                r"|被水冲走|洪水|水淹|淹了|淹到|进水.{0,4}(?:一米|半米|齐腰)"
                r"|决堤|漫堤|溃堤|管涌|山洪|山体滑坡|泥石流|滑坡|(?:河水|洪水|水位|江水).{0,4}(?:涨|漫|上涨)"
                r"|漫进(?:家|屋|小区|院子)|漫过|倒灌|(?:车库|家里|屋里|一楼).{0,3}进水|决口|溃坝"
                r"|(?:坝|堤|塘).{0,6}(?:开了?个?口子|垮)|水在往外冲",
            ),
        ),
        (("water", r"冒浑水|渗水|渗漏|往里灌|掉石头|滚石|落石|裂开了?口子"),),
    ),
    (
        "animal",
        "动物伤人",
        (),
        (
            # An animal that has hurt someone; urgent while it is still loose or keeps attacking.
            (
                "animal",
                r"(?:狗|犬|狼狗|野猪|牛|蛇|马蜂|蜂|猴|野兽)[^。！？\n]{0,16}(?:咬|拱伤|顶伤|伤人|蛰|扑倒|撞伤|抓伤)"
                r"|(?:被|把).{0,6}(?:咬伤|咬了|咬出血|拱伤|顶伤|蛰伤)",
            ),
        ),
    ),
    (
        "fraud",
        "诈骗进行中",
        (
            (
                "fraud",
                r"冒充.{0,16}(?:转了|汇了)|(?:刚刚?|刚才|已经)(?:被骗|转了?.{0,6}(?:万|钱|元))"
                r"|正在.{0,10}(?:转|汇)[^。！？\n]{0,6}(?:万|钱|元)",
            ),
        ),
        (),
    ),
    (
        "help",
        "呼救",
        (("help", r"救命|快来人|紧急求助|十万火急|生命危险|危及生命|人命关天|非常危险|马上要出人命|出人命"),),
        (),
    ),
)

# Extra words an animal hazard needs: still loose, attacking again, or several victims.
_ANIMAL_LOOSE = re.compile(
    r"还在|仍在|乱跑|乱冲|乱窜|跑来跑去|没人管|未控制|没抓到|没拴|不拴|见人就|连着|连续|又咬"
    r"|已经咬了"
    r"|[两三几]个|往.{0,6}跑|在.{0,6}(?:转|游荡|活动|跑)"
)

# Words just before a trigger that cancel it. "不停/不断/不省" are not negations.
_NEGATION = re.compile(
    r"(?:没有|没|无|未|不是|并非|并没|不(?![停断住省知了少会让能怎])|别|防止|预防|避免|以防|谨防|担心会?|怕"
    r"|会不会|是否|有没有|如何|怎么)$"
)
# Something that happened before, or nearly happened, is not happening now.
_PAST = re.compile(
    r"(?:去年|前年|上个月|上月|以前|之前|曾经|前几年|几年前|当年|上次|遭了|遭遇了?|发生过|差点|差一点|险些|前几天|前天"
    r"|上周|上星期|前阵子|前段时间|那次|好多年)[^，。！？\n]{0,8}$"
)
# A danger someone fears or imagines is a normal request about prevention ("担心…会起火", "真着火了怎么办").
_HYPOTHETICAL = re.compile(
    r"(?:担心|害怕|生怕|怕|万一|如果|要是|假如|一旦|防止|以免|预防|避免|真|怕以后)[^，。！？\n]{0,18}$"
    r"|(?:会|可能会?|容易|易|引发|导致)$"
)
# The resident's own exasperation ("吵得我想杀人", "真想一把火烧了它"), not a threat being carried out.
_HYPERBOLE = re.compile(r"(?:想|恨不得|真想|都想|要疯|逼疯|气得|吵得|烦得|要被|真要)[^，。！？\n]{0,10}$")
# A past event named inside the match ("外墙瓷砖去年掉过"), or told with the experiential 过.
_PAST_INSIDE = re.compile(r"去年|前年|上个月|以前|之前|曾经|好多年")
# The message itself says the danger is over.
_OVER = re.compile(
    r"^[^。！？\n]{0,10}(?:已经?|早已|已被)(?:被)?"
    r"(?:扑灭|灭了|熄灭|处理|解决|修好|修复|救出|送医|送医院|找到|抢修好|排除|没事)"
)
_OVER_ANYWHERE = re.compile(r"已经?(?:送医院|送医|住院|找到|救出来?|扑灭|没事)了?[^。！？\n]{0,10}(?:没事|住院|了)")
# Hearsay of something past ("听说前几天…") is not a report of a danger now.
_HEARSAY = re.compile(r"听说|据说|听人说|听别人说|传言|网上说")
# A long-running complaint: the same thing every night for months.
_CHRONIC = re.compile(
    r"天天|每天|每晚|好几年|几年了|几个月|[一两三四五六]个多?月|大半年|半年|多年|经常|总是|老是"
    r"|又.{0,2}了好"
    r"|多次|好多回|好几回|无数次|吵了|砸了.{0,4}月"
)
_CHRONIC_NOISE = re.compile(r"吵|噪音|噪声|扰民|装修|跺|蹦迪|唱歌|音响|打麻将|麻将")
# A scam call seen through: worth a warning to neighbours, not an emergency dispatch.
_SCAM_AVERTED = re.compile(r"没转|没有转|没打钱|没汇|没给|识破|没上当|差点|挂了|没理|提醒")
_VICTIM_NOW = re.compile(r"打我|我被打|家暴|打他老|打她|在打")
_LOOKBEHIND = 6
_WINDOW = 60
# Emergencies are reported in a few lines. A long letter that mentions a fire or a beating is nearly
# always a complaint about something that happened; it is urgent only if it also says it is happening now.
LONG_MESSAGE = 200
_IMMEDIATE = re.compile(r"正在|刚刚|刚才|赶快|赶紧|快来|救命|请速|速来|此刻|就在现在|现在还在|现在楼下")


@dataclass(frozen=True)
class Urgency:
    """The urgency verdict and the words behind it."""

    level: str  # 'urgent' | 'normal'
    reason: str | None  # danger class, trigger words and qualifier, None when normal
    kinds: tuple[str, ...] = ()  # rule labels that fired (fire, gas, structure, quarrel, ...)
    dangers: tuple[str, ...] = field(default=())  # danger classes (fire_gas, structural, ...)
    words: tuple[str, ...] = field(default=())  # the trigger words

    @property
    def urgent(self) -> bool:
        """True for urgent demands."""
        return self.level == "urgent"


@dataclass(frozen=True)
class _Rule:
    danger: str
    label: str
    kind: str
    pattern: re.Pattern[str]
    hazard: bool  # needs a qualifier


class UrgencyDetector:
    """Finds urgent danger in normalised text. Extra county words are plain literal triggers."""

    def __init__(self, extra_words: Iterable[str] = ()) -> None:
        rules: list[_Rule] = []
        for danger, label, triggers, hazards in _CLASSES:
            for kind, pattern in triggers:
                rules.append(_Rule(danger, label, kind, _compile(pattern), False))
            for kind, pattern in hazards:
                rules.append(_Rule(danger, label, kind, _compile(pattern), True))
        extra = [re.escape(w.strip()) for w in extra_words if w and w.strip()]
        if extra:
            rules.append(_Rule("county", "县定紧急词", "county", re.compile("|".join(extra)), False))
        self._rules = rules
        self._in_use = re.compile(_IN_USE)
        self._worse = re.compile(_WORSE)
        self._now = re.compile(_NOW)
        # One combined scan first: most messages are not urgent. The lookahead on the characters a
        # trigger can start with lets `re` skip most positions without trying every alternative there.
        combined = "|".join(f"(?:{rule.pattern.pattern})" for rule in rules)
        starts = _first_chars(combined)
        if starts:
            combined = f"(?=[{''.join(re.escape(ch) for ch in sorted(starts))}])(?:{combined})"
        self._any = re.compile(combined)

    def _qualifier(self, rule: _Rule, text: str, start: int, end: int) -> str | None:
        """Why a hazard counts: the qualifier found around it, or None."""
        window = text[max(0, start - 20) : end + _WINDOW]
        for name, pattern in (("仍在使用", self._in_use), ("在加剧", self._worse), ("正在发生", self._now)):
            if rule.kind == "animal" and name != "在加剧":
                found = _ANIMAL_LOOSE.search(window) or pattern.search(window)
            else:
                found = pattern.search(window)
            if found:
                return f"{name}：{found.group()}"
        if rule.kind == "animal":
            found = _ANIMAL_LOOSE.search(window)
            return f"仍在伤人：{found.group()}" if found else None
        return None

    def detect(self, text: str) -> Urgency:
        """The urgency of a message (normalised text)."""
        if not text or not self._any.search(text):
            return Urgency("normal", None)
        chronic = bool(_CHRONIC.search(text) and _CHRONIC_NOISE.search(text)) and not _IMMEDIATE.search(text)
        hearsay = _HEARSAY.search(text)
        words: list[str] = []
        kinds: list[str] = []
        dangers: list[str] = []
        reasons: dict[str, list[str]] = {}
        for rule in self._rules:
            for match in rule.pattern.finditer(text):
                before = text[max(0, match.start() - _LOOKBEHIND) : match.start()]
                context = text[max(0, match.start() - 20) : match.start()]
                after = text[match.end() : match.end() + 16]
                if _NEGATION.search(before) or _PAST.search(context) or _HYPOTHETICAL.search(context):
                    continue
                if _OVER.search(after) or _PAST_INSIDE.search(match.group()) or after.startswith("过"):
                    continue
                if chronic and rule.danger in ("violence", "structural") and not _VICTIM_NOW.search(text):
                    continue
                if rule.danger == "violence" and (
                    _HYPERBOLE.search(context) or (chronic and not _VICTIM_NOW.search(text))
                ):
                    continue
                if rule.danger == "fraud" and _SCAM_AVERTED.search(text):
                    continue
                qualifier = None
                if rule.hazard:
                    qualifier = self._qualifier(rule, text, match.start(), match.end())
                    if qualifier is None:
                        continue
                if (
                    hearsay
                    and hearsay.start() < match.start()
                    and not (self._now.search(text[match.end() :]) or qualifier)
                ):
                    continue
                word = match.group()
                if word not in words:
                    words.append(word)
                if rule.kind not in kinds:
                    kinds.append(rule.kind)
                if rule.danger not in dangers:
                    dangers.append(rule.danger)
                entry = reasons.setdefault(rule.label, [])
                shown = word if len(word) <= 12 else word[:12] + "…"
                text_part = f"{shown}（{qualifier}）" if qualifier else shown
                if text_part not in entry and len(entry) < 3:
                    entry.append(text_part)
        if not words:
            return Urgency("normal", None)
        if len(text) > LONG_MESSAGE and not _IMMEDIATE.search(text):
            return Urgency("normal", None)
        if _OVER_ANYWHERE.search(text) and not _IMMEDIATE.search(text):
            return Urgency("normal", None)
        reason = "；".join(f"{label}：{'、'.join(parts)}" for label, parts in reasons.items())
        return Urgency("urgent", reason, tuple(kinds), tuple(dangers), tuple(words))


def _compile(pattern: str) -> re.Pattern[str]:
    """Compile with a lookahead on the characters a match can start with: `re` then skips most positions."""
    starts = _first_chars(pattern)
    if starts:
        pattern = f"(?=[{''.join(re.escape(ch) for ch in sorted(starts))}])(?:{pattern})"
    return re.compile(pattern)


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
