"""Uploading reference images and downloading results: types, size caps, streaming to disk, retries."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes._png import png_for
from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, Timeline
from tests.toapis._helpers import MakeClient, submit
from toapis import (
    APIConnectionError,
    APITimeoutError,
    DownloadError,
    DownloadTooLargeError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ToAPIsClient,
    UploadRejectedError,
)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
GIF = b"GIF89a" + b"\x00" * 100
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 100


async def completed_task_url(client: ToAPIsClient, fake: FakeToAPIs, *, aspect: str = "1:1", n: int = 1) -> str:
    fake.queue_timeline(Timeline.instant())
    task = await submit(client, "job-download", aspect=aspect, n=n)
    return fake.result_url(task.id, 1)


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- uploads ------------------------------------------------------------------------------------------------------


async def test_an_upload_returns_its_url_on_the_files_host(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    data = png_for("reference", 32, 16)
    uploaded = await toapis_client.upload_image(data, filename="cat.png", content_type="image/png")
    assert uploaded.url.startswith(toapis_fake.files_url + "/uploads/")
    assert (uploaded.mime_type, uploaded.size) == ("image/png", len(data))
    stored = toapis_fake.uploads[uploaded.id]
    assert (stored.data, stored.filename, stored.declared_type, stored.purpose) == (
        data,
        "cat.png",
        "image/png",
        "generation",
    )
    (request,) = toapis_fake.requests_to(Endpoint.UPLOAD)
    assert request.form == {"file": f"<file 'cat.png' image/png {len(data)} bytes>", "purpose": "generation"}
    downloaded = await toapis_client.download_image(uploaded.url, max_bytes=1_000_000)
    assert downloaded.data == data


@pytest.mark.parametrize(("data", "mime_type"), [(JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")])
async def test_every_documented_type_is_accepted(toapis_client: ToAPIsClient, data: bytes, mime_type: str) -> None:
    uploaded = await toapis_client.upload_image(data, filename="x", content_type="application/octet-stream")
    assert uploaded.mime_type == mime_type


async def test_too_large_is_refused_without_sending(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(UploadRejectedError) as caught:
        await toapis_client.upload_image(
            b"\x89PNG\r\n\x1a\n" + bytes(10_000_000), filename="big.png", content_type="image/png"
        )
    assert str(caught.value) == "ToAPIs upload: Image too large. Maximum size is 10MB (10,000,008 bytes given)"
    assert toapis_fake.requests == []


async def test_empty_is_refused_without_sending(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(UploadRejectedError, match="the image is empty"):
        await toapis_client.upload_image(b"", filename="x.png", content_type="image/png")
    assert toapis_fake.requests == []


async def test_exactly_the_limit_is_uploaded(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(10_000_000 - 8)
    uploaded = await toapis_client.upload_image(data, filename="max.png", content_type="image/png")
    assert uploaded.size == 10_000_000


async def test_a_refusal_with_success_false_and_status_200(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.UPLOAD, Fault.answer(200, {"success": False, "message": "Storage quota exceeded"}))
    with pytest.raises(UploadRejectedError) as caught:
        await toapis_client.upload_image(JPEG, filename="x.jpg", content_type="image/jpeg")
    assert str(caught.value) == "ToAPIs upload: Storage quota exceeded (HTTP 200)"


async def test_uploads_are_retried_on_transient_failures(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.UPLOAD, Fault.server_error())
    toapis_fake.fail(Endpoint.UPLOAD, Fault.disconnect())
    uploaded = await toapis_client.upload_image(JPEG, filename="x.jpg", content_type="image/jpeg")
    assert len(toapis_fake.requests_to(Endpoint.UPLOAD)) == 3
    assert list(toapis_fake.uploads) == [uploaded.id]


# --- downloads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("aspect", "size"), [("1:1", "1024x1024"), ("3:2", "1536x1024"), ("2:3", "1024x1536")])
async def test_a_download_is_the_real_png_at_the_size_asked(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, aspect: str, size: str
) -> None:
    url = await completed_task_url(toapis_client, toapis_fake, aspect=aspect)
    downloaded = await toapis_client.download_image(url, max_bytes=10_000_000)
    assert downloaded.data is not None
    assert downloaded.path is None
    assert (downloaded.content_type, downloaded.size, downloaded.url) == ("image/png", len(downloaded.data), url)
    with Image.open(io.BytesIO(downloaded.data)) as image:
        assert f"{image.width}x{image.height}" == size
    assert toapis_fake.requests_to(Endpoint.DOWNLOAD)[0].headers.get("Authorization") is None  # the key stays home


async def test_a_download_streams_to_a_file(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, tmp_path: Path
) -> None:
    toapis_fake.result_min_bytes = 1_000_000
    url = await completed_task_url(toapis_client, toapis_fake)
    dest = tmp_path / "result.png"
    downloaded = await toapis_client.download_image(url, max_bytes=2_000_000, dest=dest)
    assert downloaded.path == dest
    assert downloaded.data is None
    assert dest.read_bytes() == toapis_fake.result_png(url.split("/")[-2], 1)
    assert downloaded.size == dest.stat().st_size >= 1_000_000
    assert names_in(tmp_path) == ["result.png"]


async def test_the_cap_is_enforced_while_streaming(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, tmp_path: Path
) -> None:
    toapis_fake.result_min_bytes = 500_000
    toapis_fake.files_chunked = True  # no Content-Length: only counting the bytes can catch it
    url = await completed_task_url(toapis_client, toapis_fake)
    dest = tmp_path / "result.png"
    with pytest.raises(DownloadTooLargeError) as caught:
        await toapis_client.download_image(url, max_bytes=200_000, dest=dest)
    assert str(caught.value) == "ToAPIs download: the image is larger than the 200,000 bytes allowed (HTTP 200)"
    assert names_in(tmp_path) == []  # the partial file is gone
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == 1  # too large is final


async def test_a_chunked_download_within_the_cap(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.result_min_bytes = 300_000
    toapis_fake.files_chunked = True
    url = await completed_task_url(toapis_client, toapis_fake)
    downloaded = await toapis_client.download_image(url, max_bytes=300_000)
    assert downloaded.size == 300_000


async def test_an_unlabelled_image_is_recognised_by_its_bytes(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.files_content_type = "application/octet-stream"
    url = await completed_task_url(toapis_client, toapis_fake)
    assert (await toapis_client.download_image(url, max_bytes=10_000_000)).content_type == "image/png"


async def test_an_unlabelled_non_image_is_refused(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    url = await completed_task_url(toapis_client, toapis_fake)
    toapis_fake.fail(Endpoint.DOWNLOAD, Fault.answer(200, b"just some bytes", content_type="application/octet-stream"))
    with pytest.raises(DownloadError) as caught:
        await toapis_client.download_image(url, max_bytes=10_000_000)
    assert str(caught.value) == (
        "ToAPIs download: the files host sent 'application/octet-stream' and the bytes are not an image (HTTP 200)"
    )


async def test_a_mislabelled_image_gets_the_type_of_its_bytes(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.files_content_type = "image/jpeg"
    url = await completed_task_url(toapis_client, toapis_fake)
    assert (await toapis_client.download_image(url, max_bytes=10_000_000)).content_type == "image/png"


@pytest.mark.parametrize(
    "fault",
    [Fault.server_error(), Fault.bad_gateway(), Fault.disconnect(), Fault.truncated(), Fault.rate_limited(0)],
    ids=["500", "502", "dropped", "truncated", "429"],
)
async def test_downloads_are_retried(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, tmp_path: Path, fault: Fault
) -> None:
    url = await completed_task_url(toapis_client, toapis_fake)
    toapis_fake.fail(Endpoint.DOWNLOAD, fault, times=2)
    downloaded = await toapis_client.download_image(url, max_bytes=10_000_000, dest=tmp_path / "x.png")
    assert downloaded.path is not None
    assert downloaded.path.read_bytes() == toapis_fake.result_png(url.split("/")[-2], 1)
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == 3
    assert names_in(tmp_path) == ["x.png"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.server_error(), ServerError),
        (Fault.truncated(), APIConnectionError),
        (Fault.rate_limited(0), RateLimitError),
    ],
)
async def test_persistent_download_failures_are_raised(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, tmp_path: Path, fault: Fault, error: type[Exception]
) -> None:
    url = await completed_task_url(toapis_client, toapis_fake)
    toapis_fake.fail(Endpoint.DOWNLOAD, fault, times=None)
    with pytest.raises(error):
        await toapis_client.download_image(url, max_bytes=10_000_000, dest=tmp_path / "x.png")
    assert names_in(tmp_path) == []


async def test_the_download_timeout_covers_the_body(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    client = make_client(retry=RetryPolicy(max_retries=0))
    url = await completed_task_url(client, toapis_fake)
    toapis_fake.fail(Endpoint.DOWNLOAD, Fault.stalled_body(30))
    with pytest.raises(APITimeoutError) as caught:
        await client.download_image(url, max_bytes=10_000_000, timeout=0.1)
    assert str(caught.value) == "ToAPIs download: not finished within 0.1 s"


async def test_a_url_that_is_not_http_is_refused(toapis_client: ToAPIsClient) -> None:
    with pytest.raises(DownloadError, match="not an http"):
        await toapis_client.download_image("file:///etc/passwd", max_bytes=10)
    with pytest.raises(ValueError, match="max_bytes"):
        await toapis_client.download_image("https://example.com/x.png", max_bytes=0)


async def test_many_large_downloads_at_once_to_disk(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, tmp_path: Path
) -> None:
    toapis_fake.result_min_bytes = 1_000_000
    toapis_fake.queue_timeline(*[Timeline.instant()] * 6)
    tasks = await asyncio.gather(*(submit(toapis_client, f"job-{number}", n=2) for number in range(6)))
    urls = [toapis_fake.result_url(task.id, index) for task in tasks for index in (1, 2)]
    downloads = await asyncio.gather(
        *(
            toapis_client.download_image(url, max_bytes=2_000_000, dest=tmp_path / f"{number}.png")
            for number, url in enumerate(urls)
        )
    )
    contents = [download.read_bytes() for download in downloads]
    assert len(set(contents)) == 12  # every image distinct
    assert all(len(content) >= 1_000_000 for content in contents)
    expected = [toapis_fake.result_png(task.id, index) for task in tasks for index in (1, 2)]
    assert contents == expected
