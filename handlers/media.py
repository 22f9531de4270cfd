"""Keeping what residents send: images, voice and video fetched from WeChat (`media/get`) into our storage.

WeChat deletes temporary media three days after the message, so the intake records a MediaFile for each
media push and, after its transaction commits, queues `fetch_media` (an RQ job with retries; never in the
webhook). The job checks the size and the type (by the file's first bytes, not only by what the server
declares), stores the file under a content address and marks the row; staff open it from the ticket page.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from flask import current_app
from rq import Callback, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bot.clients import DailyQuotaExceeded, PermanentSendError, RetryableSendError, wechat_api
from bot.clients.wechat import MediaTooLarge
from config.queues import QueueNames
from models import InboundMessage, MediaFile, MediaStatus, db, utcnow
from ops.queue import enqueue, redis_connection
from ops.storage import media_storage
from workflow.rules.sla import LOCAL_TZ

log = logging.getLogger(__name__)

MEDIA_TYPES = frozenset({"image", "voice", "video", "shortvideo"})
# WeChat keeps temporary media three days; we stop trying a little before.
MEDIA_LIFETIME = timedelta(days=3)
FETCH_RETRY = Retry(max=6, interval=[30, 120, 600, 1800, 3600, 7200])

# What we keep, by the file's own first bytes: (magic, offset) → (content type, extension).
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"GIF87a", 0, "image/gif", "gif"),
    (b"GIF89a", 0, "image/gif", "gif"),
    (b"BM", 0, "image/bmp", "bmp"),
    (b"#!AMR", 0, "audio/amr", "amr"),
    (b"ID3", 0, "audio/mpeg", "mp3"),
    (b"\xff\xfb", 0, "audio/mpeg", "mp3"),
    (b"#!SILK", 1, "audio/silk", "silk"),
    (b"Speex", 28, "audio/speex", "spx"),
    (b"ftyp", 4, "video/mp4", "mp4"),
)
# Which kinds of file each message type may carry.
_ALLOWED = {
    "image": ("image/",),
    "voice": ("audio/",),
    "video": ("video/",),
    "shortvideo": ("video/",),
}


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) recognised from the file's first bytes, or None."""
    for magic, offset, content_type, extension in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if content_type == "image/bmp" and len(data) < 26:
                continue
            return content_type, extension
    if data[8:12] == b"WEBP" and data[:4] == b"RIFF":
        return "image/webp", "webp"
    return None


def keep_media(inbound: InboundMessage, ticket_id: int | None, now: datetime) -> MediaFile | None:
    """Record the push's media for fetching (once per inbound row); None for pushes without a MediaId."""
    media_id = str((inbound.payload or {}).get("MediaId") or "").strip()
    if inbound.msg_type not in MEDIA_TYPES or not media_id:
        return None
    existing = db.session.execute(db.select(MediaFile).filter_by(inbound_id=inbound.id)).scalar_one_or_none()
    if existing is not None:
        existing.ticket_id = existing.ticket_id or ticket_id
        return existing
    received = inbound.received_at or now
    media = MediaFile(
        inbound_id=inbound.id,
        ticket_id=ticket_id,
        msg_type=inbound.msg_type,
        media_id=media_id[:256],
        status=MediaStatus.PENDING,
        attempts=0,
        expires_at=received + MEDIA_LIFETIME,
        created_at=now,
    )
    db.session.add(media)
    return media


def enqueue_fetch(media_file_id: int) -> bool:
    return enqueue(
        fetch_media,
        media_file_id,
        queue=QueueNames.DELIVERY,
        job_id=f"media-{media_file_id}",
        retry=FETCH_RETRY,
        on_failure=Callback(on_fetch_failure),
    )


def fetch_media(media_file_id: int) -> str:
    """Fetch one media file from WeChat into storage; returns its final (or current) status.

    Network trouble and WeChat's busy answers raise for RQ to retry; a file WeChat no longer has, one over
    MEDIA_MAX_BYTES or of a type we do not keep is recorded as such and not tried again."""
    media = db.session.execute(db.select(MediaFile).filter_by(id=media_file_id).with_for_update()).scalar_one_or_none()
    if media is None or media.status != MediaStatus.PENDING:
        return media.status if media else "missing"
    now = utcnow()
    if now >= media.expires_at:
        return _finish(media, MediaStatus.FAILED, "WeChat keeps media three days; this one has expired")
    media.attempts += 1
    max_bytes = int(current_app.config.get("MEDIA_MAX_BYTES") or 10 * 1024 * 1024)
    try:
        download = wechat_api().get_media(media.media_id, max_bytes)
    except RetryableSendError as exc:
        media.error = str(exc)[:2000]
        db.session.commit()
        raise
    except MediaTooLarge as exc:
        return _finish(media, MediaStatus.REJECTED, str(exc))
    except DailyQuotaExceeded as exc:
        media.error = str(exc)[:2000]
        db.session.commit()
        raise RetryableSendError(str(exc), exc.errcode) from None  # within the three days, a retry will do
    except PermanentSendError as exc:
        return _finish(media, MediaStatus.FAILED, str(exc))
    recognised = sniff(download.content)
    allowed = _ALLOWED.get(media.msg_type, ())
    if recognised is None or not recognised[0].startswith(allowed):
        declared = download.content_type or "unknown"
        return _finish(media, MediaStatus.REJECTED, f"type not kept: declared {declared}, content {recognised}")
    content_type, extension = recognised
    digest = hashlib.sha256(download.content).hexdigest()
    key = f"{now.astimezone(LOCAL_TZ):%Y/%m}/{digest}.{extension}"
    storage = media_storage()
    storage.put(key, download.content, content_type)
    media.storage, media.storage_key = storage.name, key
    media.content_type, media.size, media.sha256 = content_type, len(download.content), digest
    media.fetched_at = now
    return _finish(media, MediaStatus.STORED, None)


def _finish(media: MediaFile, status: MediaStatus, error: str | None) -> str:
    media.status = status
    media.error = error[:2000] if error else None
    if error:
        log.warning("media %s %s: %s", media.id, status, error)
    db.session.commit()
    return media.status


def on_fetch_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this after every failed attempt; the last one (no retries left) gives the file up."""
    if job.retries_left:
        return
    media = db.session.get(MediaFile, job.args[0])
    if media is not None and media.status == MediaStatus.PENDING:
        _finish(media, MediaStatus.FAILED, f"gave up after {media.attempts} attempts: {exc_value}")


def recover_media(older_than_seconds: int = 120, limit: int = 2000) -> int:
    """Pending files whose fetch job vanished (Redis emptied, worker killed) get one again, while WeChat
    still has them. The job id is unique: a fetch still queued or scheduled is left alone."""
    now = utcnow()
    ids = (
        db.session.execute(
            db.select(MediaFile.id)
            .filter(
                MediaFile.status == MediaStatus.PENDING,
                MediaFile.created_at <= now - timedelta(seconds=older_than_seconds),
                MediaFile.expires_at > now,
            )
            .order_by(MediaFile.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return sum(1 for media_file_id in ids if _fetch_again(media_file_id))


def _fetch_again(media_file_id: int) -> bool:
    """Queue a fetch; a job of the same id that is over (its worker died, it gave up) is replaced."""
    if enqueue_fetch(media_file_id):
        return True
    try:
        job = Job.fetch(f"media-{media_file_id}", connection=redis_connection())
    except NoSuchJobError:
        return enqueue_fetch(media_file_id)
    if job.get_status(refresh=True) in (JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED):
        job.delete()
        return enqueue_fetch(media_file_id)
    return False  # queued, scheduled or running: it will do
