"""Every text a resident reads, in one place (Chinese, short, says what happens next)."""

from __future__ import annotations

from datetime import datetime

from config import LOCAL_TZ

EMERGENCY_HINT = "如遇危及生命财产安全的紧急情况，请立即拨打110、119或120。"

HELP = (
    "您好！这里是县网格化服务平台。\n"
    "直接发送文字（可附图片、位置）即可反映问题，例如：“幸福里小区3号楼门口路灯不亮”。\n"
    "回复“查询”查看您的工单，“查询 工单号”查看进度，“取消 工单号”撤回。\n" + EMERGENCY_HINT
)

WELCOME = "感谢关注！" + HELP

ASK = {
    "location": "为尽快派到责任网格，请补充具体地点（小区/村组、楼栋门牌号），直接回复即可。",
    "matter": "请用一句话描述您要反映的问题，例如“3号楼楼道灯坏了”，直接回复即可。",
}


def local_time(moment: datetime | None) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%m月%d日%H:%M") if moment else "—"


def acknowledgement(ticket, owner_name: str | None, missing: list[str]) -> str:
    lines = [f"您反映的问题已受理，工单号：{ticket.number}。"]
    if ticket.category:
        lines.append(f"类别：{ticket.category}" + (f"/{ticket.subcategory}" if ticket.subcategory else ""))
    if ticket.location_text:
        lines.append(f"地点：{ticket.location_text}" + (f"（{owner_name}）" if owner_name else ""))
    elif owner_name:
        # No place known: name who holds it, never an empty "地点：（青山县）".
        lines.append(f"承办：{owner_name}")
    lines.append(f"将于{local_time(ticket.sign_due_at)}前签收、{local_time(ticket.due_at)}前办结，进展会及时告知您。")
    if ticket.urgency == "urgent":
        lines.append("已按紧急事项处理。" + EMERGENCY_HINT)
    for field in missing:
        if field in ASK:
            lines.append(ASK[field])
    lines.append(f"回复“查询 {ticket.number}”可随时查看进度。")
    return "\n".join(lines)


def supplement_received(ticket, owner_name: str | None) -> str:
    where = f"，已转交{owner_name}" if owner_name else ""
    return f"已收到您的补充，工单{ticket.number}已更新{where}。"


def attachment_received(ticket, what: str) -> str:
    return f"已收到您发送的{what}，已补充到工单{ticket.number}。"


def location_recorded(grid_name: str | None) -> str:
    if grid_name:
        return f"已记录您的位置（{grid_name}）。反映问题时若不写地点，将默认派到该网格。"
    return "已记录您的位置。"


def status_line(ticket, labels: dict) -> str:
    return (
        f"工单{ticket.number}：{labels.get(ticket.status, ticket.status)}"
        f"，{ticket.category or '待分类'}，受理于{local_time(ticket.created_at)}，办结时限{local_time(ticket.due_at)}。"
    )


NO_TICKETS = "您目前没有办理中的工单。" + "直接发送文字即可反映问题。"
NOT_FOUND = "没有找到该工单，请核对工单号（可回复“查询”查看您的全部工单）。"
CANCELLED = "工单{number}已按您的要求撤回。如问题仍存在，可随时重新反映。"
CANNOT_CANCEL = "工单{number}当前状态为“{status}”，无法撤回。"
# 取消 on a ticket others reported too, or one staff already took up: only the resident's own report goes.
WITHDRAWN = (
    "已撤回您对工单{number}的反映，此后不再向您推送该工单的进展。该事项还有其他居民反映或已在办理，工单将继续办理。"
)
NOTHING_TO_ACT_ON = "没有看懂您要反映的问题。" + ASK["matter"]


# Updates on a ticket, sent to every reporter.
def update_text(kind: str, ticket, node_name: str | None = None, note: str | None = None) -> str:
    number = ticket.number
    texts = {
        "assigned": f"您的工单{number}已派至{node_name or '责任单位'}办理。",
        "sign": f"您的工单{number}已由{node_name or '责任单位'}签收，正在办理。",
        "escalate": f"您的工单{number}已提级至{node_name or '上级'}督办。",
        "return": f"您的工单{number}已转{node_name or '上级'}重新派单。",
        "request_info": f"办理工单{number}需要您补充：{note or '更多信息'}。请直接回复。",
        "resolve": (f"您的工单{number}已办结：{note or ''}\n请对办理结果评价，回复：1 满意，2 基本满意，3 不满意。"),
        "reopen": f"您的工单{number}已重新办理，我们会尽快给您答复。",
        "merge": f"您的工单{number}与其他居民反映的同一问题已合并办理（工单{node_name}），进展会同步告知您。",
        "close": f"您的工单{number}已结案。" + (f"说明：{note}" if note else "感谢您的反映！"),
        "rated": f"感谢您对工单{number}的评价！",
    }
    return texts[kind]


DUPLICATE_JOINED = (
    "您反映的问题已有居民反映，已合并到工单{number}（{owner}办理中），进展会同步告知您。"
    "如果不是同一件事，请回复“不是同一件事”，我们将为您单独立案。"
)


NOT_JOINED = "您最近反映的问题没有合并到其他工单，无需拆分。如有新的问题，请直接描述问题和地点。"


def split_text(ticket, owner: str | None) -> str:
    """A joined report given its own ticket again (staff's split, or the resident's "不是同一件事")."""
    return (
        f"您反映的问题已单独立案，工单号：{ticket.number}（{owner or '责任单位'}办理），"
        "进展会同步告知您。回复“查询”可查看办理进度。"
    )


RATING_UNKNOWN = "请回复 1（满意）、2（基本满意）或 3（不满意）对工单进行评价。"


# Policy notices (broadcasts). Opting out never stops answers about the resident's own tickets.
NOTICES_OFF = "已为您退订政策通知。您反映的问题仍会照常答复进展；回复“订阅通知”可重新订阅。"
NOTICES_ALREADY_OFF = "您已退订政策通知。回复“订阅通知”可重新订阅。"
NOTICES_ON = "已为您订阅政策通知，所在区域的政策宣传将通过本公众号推送给您。回复“退订通知”可随时退订。"
NOTICES_ALREADY_ON = "您已订阅政策通知。回复“退订通知”可随时退订。"


def recent_notices(notices: list) -> str:
    """The latest notices that reached the resident's area (title, date, the start of the text)."""
    if not notices:
        return "最近没有发往您所在区域的政策通知。" + "回复“退订通知”可退订，“订阅通知”可重新订阅。"
    lines = ["最近的政策通知："]
    for index, notice in enumerate(notices, 1):
        body = notice.body if len(notice.body) <= 60 else notice.body[:60] + "…"
        lines.append(f"{index}. 【{notice.title}】{local_time(notice.created_at)}\n{body}")
    return "\n".join(lines)


# The demand gate (demand/gate.py): what a resident hears when a text is not something to act on.
NON_DEMAND_REPLIES = {
    "placeholder": "暂时无法显示您发送的表情或消息。如需反映问题，请直接发送文字描述（可附图片、位置）。",
    "greeting": "您好！请直接发送文字描述您要反映的问题（可附图片、位置），例如“幸福里小区3号楼门口路灯不亮”。",
    "test": "收到，平台运行正常。需要反映问题时，直接发送文字描述即可。",
    "thanks": "不客气！如还有问题需要反映，直接发送文字即可。",
    "link": "已收到您分享的链接。链接不能直接登记为诉求，如需反映问题，请用文字描述问题和地点。",
    "emoji": "收到您的表情。如需反映问题，请直接发送文字描述（可附图片、位置）。",
}


# Locations (workflow/locating.py): outside the county, or in it but near no grid, they do not route.
LOCATION_OUTSIDE = "您发送的位置不在本县服务范围内，不能据此派单。"
LOCATION_UNPLACED = "已收到您的位置，但未能确定所属网格。"


def location_not_used(outside: bool, asking: bool) -> str:
    head = LOCATION_OUTSIDE if outside else LOCATION_UNPLACED
    return head + (ASK["location"] if asking else "反映问题时请写明具体地点（小区/村组、楼栋门牌号）。")
