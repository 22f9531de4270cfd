"""WeChat's rules for reaching a resident, as delivery applies them: who is not sent to, when the daily
quota is back, and what each send error means in words staff read on the ticket page."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from models import Resident, db

# The official account's channels that reach a resident (custom/send, template/send).
RESIDENT_CHANNELS = frozenset({"mp", "mp_template"})
TEMPLATE_CHANNEL = "mp_template"
# WeChat resets API quotas at midnight Beijing time.
QUOTA_TZ = ZoneInfo("Asia/Shanghai")
# Sends that waited for the quota start a minute after midnight (clocks differ) and spread over ten
# minutes (by outbox id), so the new day's quota is not spent in one burst of retries.
QUOTA_START = timedelta(minutes=1)
QUOTA_SPREAD_SECONDS = 540

# errcode → what staff read (Chinese). Unknown codes are named by number.
ERROR_TEXTS = {
    -1: "微信系统繁忙，已多次重试仍未成功",
    40001: "公众号凭证（access_token）无效，刷新后仍被拒绝，请检查 AppSecret 和 IP 白名单",
    40003: "居民的 openid 无效（可能不是本公众号的用户）",
    40037: "模板消息的模板 ID 无效，请检查 WECHAT_TEMPLATE_ID",
    42001: "公众号凭证（access_token）已过期，刷新后仍被拒绝",
    43004: "居民已取消关注公众号",
    43101: "居民拒绝接收此类消息",
    45009: "公众号今日接口调用次数已用完，将于北京时间零点额度恢复后自动重发",
    45015: "居民超过48小时未与公众号互动，客服消息无法送达",
    45047: "居民未回复前客服消息已达上限，无法继续发送",
    48001: "公众号没有该接口的权限（需认证服务号）",
}


def explain(errcode: int | None, channel: str | None = None, *, fallback: bool = False, error: str = "") -> str:
    """A send error in words for staff: what happened and what follows."""
    if fallback:
        return f"{ERROR_TEXTS.get(errcode or 0, '客服消息无法送达')}，已改用模板消息通知居民"
    if errcode in (45015, 45047) and channel == "mp":
        return f"{ERROR_TEXTS[errcode]}；未配置模板消息（WECHAT_TEMPLATE_ID），请电话联系居民或待其再次留言后重新发送"
    if errcode in ERROR_TEXTS:
        return ERROR_TEXTS[errcode]
    if errcode is not None:
        return f"发送失败（微信错误码 {errcode}）"
    if "not configured" in error:
        return "公众号或企业微信的接口参数未配置，无法发送"
    if error.startswith("gave up"):
        return "网络或微信服务器异常，多次重试后仍未成功"
    return "发送失败" + (f"（{error[:80]}）" if error else "")


def next_quota_reset(now: datetime, outbox_id: int = 0) -> datetime:
    """The first moment after `now` at which the day's quota is back, spread per message."""
    tomorrow = now.astimezone(QUOTA_TZ).date() + timedelta(days=1)
    midnight = datetime.combine(tomorrow, time(0), QUOTA_TZ)
    return midnight + QUOTA_START + timedelta(seconds=outbox_id % QUOTA_SPREAD_SECONDS)


def quota_job_id(outbox_id: int, when: datetime) -> str:
    return f"outbox-{outbox_id}-quota-{when.astimezone(QUOTA_TZ):%Y%m%d}"


def unsubscribed_among(openids: list[str]) -> set[str]:
    """The openids of residents known to have unsubscribed."""
    if not openids:
        return set()
    return set(
        db.session.execute(
            db.select(Resident.openid).filter(Resident.openid.in_(set(openids)), Resident.subscribed.is_(False))
        ).scalars()
    )
