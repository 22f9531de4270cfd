"""Media kept: images, voice and video a resident sends are fetched from WeChat (media/get, in an RQ job,
never in the webhook) into storage, shown to staff on the ticket page and counted in the ledger."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook
from rq.registry import ScheduledJobRegistry

from config.queues import QueueNames
from models import MediaFile, MediaStatus, db
from ops.queue import get_queue
from tests.handlers.test_intake_flow import push, tickets
from tests.support.wechat_push import message_xml, text_xml
from tests.web.console.helpers import signed_in

# Small but real file heads: what the type check reads.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x11" * 2000 + b"\xff\xd9"
AMR = b"#!AMR\n" + b"\x3c" * 1200
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 4000


def media_rows(app) -> list[MediaFile]:
    with app.app_context():
        return db.session.execute(db.select(MediaFile).order_by(MediaFile.id)).scalars().all()


def media_calls(fake_api) -> list:
    return [c for c in fake_api.calls if c.path == "/cgi-bin/media/get"]


def test_an_image_is_fetched_by_a_job_stored_and_shown_to_staff(region, client, fake_api, run_jobs):
    fake_api.add_media("mPhoto1", JPEG, "image/jpeg")
    push(client, text_xml("oPhoto", "幸福里小区2号楼电梯坏了", 51001))
    run_jobs()
    push(
        client,
        message_xml("oPhoto", "image", {"PicUrl": "http://mmbiz.invalid/p.jpg", "MediaId": "mPhoto1"}, msg_id=51002),
    )
    assert media_calls(fake_api) == []  # the webhook only stores the push
    run_jobs()
    [media] = media_rows(region)
    [ticket] = tickets(region)
    assert media.status == MediaStatus.STORED and media.ticket_id == ticket.id
    assert media.content_type == "image/jpeg" and media.size == len(JPEG) and media.storage == "local"
    stored = Path(region.instance_path) / "media" / media.storage_key
    assert stored.read_bytes() == JPEG
    staff, _ = signed_in(region, "mediaviewer", "staff", "990101")
    page = staff.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert f'src="/console/media/{media.id}"' in page and "已保存" not in page.split("居民发送的图片")[0]
    response = staff.get(f"/console/media/{media.id}")
    assert response.status_code == 200 and response.data == JPEG and response.mimetype == "image/jpeg"
    # in the ledger as a count
    ledger = staff.get("/console/export/ledger.xlsx?region=990101")
    sheet = load_workbook(io.BytesIO(ledger.data)).active
    header = [cell.value for cell in sheet[2]]
    row = [cell.value for cell in sheet[3]]
    assert row[header.index("附件数")] == 1 and row[0] == ticket.number


def test_staff_outside_the_tickets_region_cannot_open_its_media(region, client, fake_api, run_jobs):
    fake_api.add_media("mPrivate", JPEG, "image/jpeg")
    push(
        client,
        message_xml("oPriv", "image", {"PicUrl": "http://mmbiz.invalid/q.jpg", "MediaId": "mPrivate"}, msg_id=51101),
    )
    push(client, text_xml("oPriv", "幸福里小区门口垃圾没人清理", 51102))
    run_jobs()
    [media] = media_rows(region)
    assert media.status == MediaStatus.STORED
    other, _ = signed_in(region, "hexi", "staff", "990102")
    assert other.get(f"/console/media/{media.id}").status_code == 404


def test_voice_and_video_are_kept_too(region, client, fake_api, run_jobs):
    fake_api.add_media("mVoice", AMR, "audio/amr")
    fake_api.add_media("mVideo", MP4, "video/mp4", video=True)  # media/get answers {"video_url": ...}
    push(client, text_xml("oAV", "东大花园门口水管爆了", 51201))
    run_jobs()
    push(client, message_xml("oAV", "voice", {"MediaId": "mVoice", "Format": "amr"}, msg_id=51202))
    push(client, message_xml("oAV", "video", {"MediaId": "mVideo", "ThumbMediaId": "t1"}, msg_id=51203))
    run_jobs()
    voice, video = media_rows(region)
    assert (voice.status, voice.content_type) == (MediaStatus.STORED, "audio/amr")
    assert (video.status, video.content_type, video.size) == (MediaStatus.STORED, "video/mp4", len(MP4))
    staff, _ = signed_in(region, "avviewer", "staff", "990101")
    page = staff.get(f"/console/tickets/{voice.ticket_id}").get_data(as_text=True)
    assert "<audio controls" in page and "<video controls" in page


def test_too_large_and_wrong_types_are_refused_and_shown(region, client, fake_api, run_jobs, monkeypatch):
    monkeypatch.setitem(region.config, "MEDIA_MAX_BYTES", 1000)
    fake_api.add_media("mBig", JPEG, "image/jpeg")
    fake_api.add_media("mFake", b"<html><script>alert(1)</script></html>", "image/jpeg")
    push(client, text_xml("oLimits", "幸福里小区3号楼楼道灯坏了", 51301))
    run_jobs()
    push(
        client,
        message_xml("oLimits", "image", {"PicUrl": "http://mmbiz.invalid/a.jpg", "MediaId": "mBig"}, msg_id=51302),
    )
    run_jobs()
    monkeypatch.setitem(region.config, "MEDIA_MAX_BYTES", 10 * 1024 * 1024)
    push(
        client,
        message_xml("oLimits", "image", {"PicUrl": "http://mmbiz.invalid/b.jpg", "MediaId": "mFake"}, msg_id=51303),
    )
    run_jobs()
    big, fake = media_rows(region)
    assert big.status == MediaStatus.REJECTED and "limit" in big.error
    assert fake.status == MediaStatus.REJECTED and "type" in fake.error
    assert big.storage_key is None and fake.storage_key is None  # nothing of either was stored
    staff, _ = signed_in(region, "limits", "staff", "990101")
    page = staff.get(f"/console/tickets/{big.ticket_id}").get_data(as_text=True)
    assert page.count("超出大小或类型限制") == 2
    assert staff.get(f"/console/media/{big.id}").status_code == 404


def test_media_wechat_no_longer_has_fails_without_retrying(region, client, fake_api, run_jobs):
    push(
        client,
        message_xml(
            "oGoneMedia", "image", {"PicUrl": "http://mmbiz.invalid/c.jpg", "MediaId": "mUnknown"}, msg_id=51401
        ),
    )
    run_jobs(with_scheduler=True)
    [media] = media_rows(region)
    assert media.status == MediaStatus.FAILED and "40007" in media.error
    assert len(media_calls(fake_api)) == 1


def test_a_failed_fetch_is_retried_by_rq(region, client, fake_api, run_jobs, redis):
    fake_api.add_media("mFlaky", JPEG, "image/jpeg")
    fake_api.fail_next("/cgi-bin/media/get", (502, None))
    push(
        client,
        message_xml("oFlaky", "image", {"PicUrl": "http://mmbiz.invalid/d.jpg", "MediaId": "mFlaky"}, msg_id=51501),
    )
    run_jobs()
    [media] = media_rows(region)
    assert media.status == MediaStatus.PENDING and media.attempts == 1 and "502" in media.error
    registry = ScheduledJobRegistry(queue=get_queue(QueueNames.DELIVERY, redis))
    [job_id] = registry.get_job_ids()
    assert job_id == f"media-{media.id}"
    redis.zadd(registry.key, {job_id: time.time() - 1})  # its retry interval has passed
    run_jobs(with_scheduler=True)
    [media] = media_rows(region)
    assert media.status == MediaStatus.STORED and media.attempts == 2


def test_a_lost_fetch_job_is_recovered_while_wechat_keeps_the_file(region, client, fake_api, run_jobs, redis):
    from handlers.media import recover_media

    fake_api.add_media("mLost", JPEG, "image/jpeg")
    push(
        client,
        message_xml("oLostJob", "image", {"PicUrl": "http://mmbiz.invalid/e.jpg", "MediaId": "mLost"}, msg_id=51601),
    )
    run_jobs()
    with region.app_context():  # as if the fetch had not run yet when Redis restarted empty
        db.session.execute(db.update(MediaFile).values(status=MediaStatus.PENDING, storage_key=None))
        db.session.commit()
    redis.flushdb()
    with region.app_context():
        assert recover_media(older_than_seconds=0) == 1
    run_jobs()
    assert media_rows(region)[0].status == MediaStatus.STORED


def test_a_fetch_whose_job_died_with_its_worker_is_fetched_again(region, client, fake_api, run_jobs, redis):
    from rq.job import Job

    from handlers.media import recover_media

    fake_api.add_media("mDied", JPEG, "image/jpeg")
    push(
        client,
        message_xml("oDied", "image", {"PicUrl": "http://mmbiz.invalid/g.jpg", "MediaId": "mDied"}, msg_id=51651),
    )
    run_jobs()
    [media] = media_rows(region)
    # The job's worker was killed: RQ recorded the job as failed, the row is still pending.
    with region.app_context():
        db.session.execute(db.update(MediaFile).values(status=MediaStatus.PENDING, storage_key=None))
        db.session.commit()
    job = Job.fetch(f"media-{media.id}", connection=redis)
    job.set_status("failed")
    with region.app_context():
        assert recover_media(older_than_seconds=0) == 1
    run_jobs()
    assert media_rows(region)[0].status == MediaStatus.STORED


@pytest.fixture
def s3_server(monkeypatch):
    """moto's S3-compatible server on loopback, with a bucket."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="county-media")
    yield endpoint
    server.stop()


def test_media_go_to_an_s3_compatible_bucket_when_configured(
    region, client, fake_api, run_jobs, monkeypatch, s3_server
):
    import boto3

    monkeypatch.setitem(region.config, "MEDIA_S3_BUCKET", "county-media")
    monkeypatch.setitem(region.config, "MEDIA_S3_ENDPOINT", s3_server)
    monkeypatch.setitem(region.config, "MEDIA_S3_REGION", "us-east-1")
    fake_api.add_media("mBucket", JPEG, "image/jpeg")
    push(
        client,
        message_xml("oBucket", "image", {"PicUrl": "http://mmbiz.invalid/f.jpg", "MediaId": "mBucket"}, msg_id=51701),
    )
    run_jobs()
    [media] = media_rows(region)
    assert media.status == MediaStatus.STORED and media.storage == "s3"
    bucket = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    assert bucket.get_object(Bucket="county-media", Key=media.storage_key)["Body"].read() == JPEG
    staff, _ = signed_in(region, "bucketviewer", "admin", "990100")
    assert staff.get(f"/console/media/{media.id}").data == JPEG
