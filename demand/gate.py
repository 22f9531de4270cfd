"""The demand gate: is a resident's text something to act on, or a greeting, a test, thanks, a bare link,
an emoji, or the placeholder WeChat sends for a sticker it cannot forward?

Pure text logic (no Flask, no database). `screen(text)` answers None for anything that may be a demand:
the gate only stops texts made *entirely* of such words, so "你好，3号楼路灯坏了" still becomes a ticket.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class NonDemand(StrEnum):
    PLACEHOLDER = "placeholder"  # WeChat's stand-in for a sticker or an unsupported message
    GREETING = "greeting"
    TEST = "test"
    THANKS = "thanks"
    LINK = "link"  # a bare link (a text of URLs only, or a shared link card)
    EMOJI = "emoji"  # emoji, WeChat emoticon codes, punctuation: no words at all


# WeChat forwards a sticker, a red packet, a transfer and other things the API does not carry as a text
# such as "【收到不支持的消息类型，暂无法显示】"; clients and versions word it differently.
_PLACEHOLDER = re.compile(
    r"不支持的?消息|暂(?:时)?无法显示|暂不支持(?:该|此)?(?:类型)?的?消息|该消息类型暂不能展示|消息类型暂不支持"
    r"|unsupported\s*message|message\s*type\s*(?:is\s*)?not\s*supported",
    re.IGNORECASE,
)
# A placeholder is short; a long text that happens to quote one is read as words.
_PLACEHOLDER_MAX = 40

_URL = re.compile(r"(?:https?://|www\.)[^\s，。！？、；]+", re.IGNORECASE)
# WeChat's emoticons as text: "[微笑]", "[捂脸]", "[Smile]", and the old codes such as "/::)" or "/:rose".
_BRACKET_EMOJI = re.compile(r"\[[^\[\]\s]{1,8}\]")
_CODE_EMOJI = re.compile(r"/:[^\s/\u4e00-\u9fff]{1,8}")

# Whole-text vocabulary, matched after lower-casing and removing spaces, punctuation and emoji. A text
# made only of these words (in any order, any repetition) is that kind; the first word decides.
_WORDS: dict[NonDemand, tuple[str, ...]] = {
    NonDemand.GREETING: (
        "你好",
        "您好",
        "你们好",
        "大家好",
        "在吗",
        "在不在",
        "有人吗",
        "有人在吗",
        "请问",
        "打扰了",
        "打扰一下",
        "哈喽",
        "嗨",
        "喂",
        "早",
        "早上好",
        "上午好",
        "中午好",
        "下午好",
        "晚上好",
        "晚安",
        "小编",
        "客服",
        "工作人员",
        "老师",
        "领导",
        "hello",
        "hi",
        "hey",
        "hallo",
    ),
    NonDemand.TEST: (
        "测试",
        "测试一下",
        "测一下",
        "试试",
        "试一下",
        "试试看",
        "试一试",
        "test",
        "testing",
        "thisisatest",
        "123",
        "1234",
        "12345",
        "123456",
        "111",
        "1111",
    ),
    NonDemand.THANKS: (
        "谢谢",
        "谢谢你",
        "谢谢您",
        "谢谢你们",
        "多谢",
        "感谢",
        "非常感谢",
        "十分感谢",
        "万分感谢",
        "谢了",
        "谢啦",
        "辛苦了",
        "辛苦",
        "好的",
        "好",
        "好滴",
        "嗯",
        "嗯嗯",
        "收到",
        "知道了",
        "明白了",
        "明白",
        "了解",
        "ok",
        "okay",
        "thanks",
        "thankyou",
        "thx",
        "点赞",
        "赞",
        "666",
        "再见",
        "拜拜",
    ),
}
# Particles that add nothing on their own ("你好啊", "谢谢啦", "好的呢").
_FILLERS = ("啊", "呀", "哈", "呢", "嘛", "哦", "噢", "喔", "啦", "了", "吧", "的", "哇", "么", "吗")
_VOCABULARY = sorted(
    [(word, kind) for kind, words in _WORDS.items() for word in words] + [(f, None) for f in _FILLERS],
    key=lambda pair: -len(pair[0]),
)


def screen(text: str | None) -> NonDemand | None:
    """What kind of non-demand the whole text is, or None when it may be a demand."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw:
        return None
    if len(raw) <= _PLACEHOLDER_MAX and _PLACEHOLDER.search(raw):
        return NonDemand.PLACEHOLDER
    without_links = _URL.sub(" ", raw)
    if without_links != raw and not _words_of(without_links):
        return NonDemand.LINK
    words = _words_of(raw)
    if not words:
        return NonDemand.EMOJI
    kinds = _consume(words.lower())
    if kinds is None:
        return None
    return next((kind for kind in kinds if kind is not None), NonDemand.EMOJI)


def _words_of(text: str) -> str:
    """The text without emoticons, emoji, punctuation, symbols and spaces: what is left to read."""
    text = _CODE_EMOJI.sub("", _BRACKET_EMOJI.sub("", text))
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def _consume(words: str) -> list[NonDemand | None] | None:
    """The kinds of the vocabulary words the text is made of, or None if anything else is in it."""
    found: list[NonDemand | None] = []
    position = 0
    while position < len(words):
        for word, kind in _VOCABULARY:
            if words.startswith(word, position):
                found.append(kind)
                position += len(word)
                break
        else:
            return None
    return found
