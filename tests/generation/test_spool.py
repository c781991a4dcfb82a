"""The spool: private to the bot, and a file found in it is trusted only once it checks out as a whole image."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from generation.spool import Spool, SpoolUnsafe
from tests.fakes._png import png_for
from tests.fakes.toapis import Endpoint, FakeToAPIs, Timeline
from tests.generation.conftest import Harness
from tests.toapis._helpers import submit
from toapis import ToAPIsClient

LIMIT = 10_000_000


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def result_url(client: ToAPIsClient, fake: FakeToAPIs) -> tuple[str, bytes]:
    fake.queue_timeline(Timeline.instant())
    task = await submit(client, "job-spool")
    return fake.result_url(task.id, 1), fake.result_png(task.id, 1)


async def test_the_spool_is_created_private(tmp_path: Path, toapis_client: ToAPIsClient) -> None:
    spool = Spool(tmp_path / "data" / "spool", toapis_client, max_bytes=LIMIT)
    await spool.keep("job-1", 0, png_for("x", 8, 8))
    assert mode_of(spool.directory) == 0o700
    assert mode_of(spool.folder("job-1")) == 0o700


@pytest.mark.parametrize("loose", [0o755, 0o777, 0o710])
async def test_a_spool_open_to_others_is_made_private(tmp_path: Path, toapis_client: ToAPIsClient, loose: int) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    directory.chmod(loose)
    Spool(directory, toapis_client, max_bytes=LIMIT).remove_all_but(set())
    assert mode_of(directory) == 0o700
    # Also when the first thing the spool does is gather a job's results (no start-up sweep with leases).
    directory.chmod(loose)
    await Spool(directory, toapis_client, max_bytes=LIMIT).gather("job-1", [])
    assert mode_of(directory) == 0o700


async def test_a_whole_result_in_the_spool_is_used_without_downloading(
    tmp_path: Path, toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    url, served = await result_url(toapis_client, toapis_fake)
    spool = Spool(tmp_path / "spool", toapis_client, max_bytes=LIMIT)
    spooled = spool.folder("job-1") / "0.img"
    spooled.parent.mkdir(parents=True)
    spooled.write_bytes(served)
    result = await spool.gather("job-1", [url])
    assert result.problems == ()
    assert [(image.path, image.mime_type, image.size) for image in result.images] == [
        (spooled, "image/png", len(served))
    ]
    assert toapis_fake.requests_to(Endpoint.DOWNLOAD) == []


@pytest.mark.parametrize(
    "found",
    [
        lambda served: served[: len(served) // 2],  # cut short by a crash or a full disk
        lambda served: b"<html>an error page, saved</html>",
        lambda served: b"",
        lambda served: served + bytes(LIMIT),  # over the limit
    ],
    ids=["truncated", "not-an-image", "empty", "too-large"],
)
async def test_a_result_that_does_not_check_out_is_discarded_and_downloaded_again(
    tmp_path: Path, toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, found: Callable[[bytes], bytes]
) -> None:
    url, served = await result_url(toapis_client, toapis_fake)
    spool = Spool(tmp_path / "spool", toapis_client, max_bytes=LIMIT)
    spooled = spool.folder("job-1") / "0.img"
    spooled.parent.mkdir(parents=True)
    spooled.write_bytes(found(served))
    result = await spool.gather("job-1", [url])
    assert result.problems == ()
    (image,) = result.images
    assert (image.path, image.mime_type, image.size) == (spooled, "image/png", len(served))
    assert spooled.read_bytes() == served
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == 1


async def test_a_damaged_result_that_came_as_bytes_is_gone(tmp_path: Path, toapis_client: ToAPIsClient) -> None:
    spool = Spool(tmp_path / "spool", toapis_client, max_bytes=LIMIT)
    data = png_for("b64 result", 64, 64)
    source = await spool.keep("job-1", 0, data)
    kept_file = spool.folder("job-1") / "0.img"
    assert source == str(kept_file)
    kept = await spool.gather("job-1", [source])
    assert [image.size for image in kept.images] == [len(data)]
    kept_file.write_bytes(data[:-20])  # damaged after it was kept
    damaged = await spool.gather("job-1", [source])
    assert damaged.images == ()
    assert damaged.problems == ("result 0: gone from the spool",)
    assert not kept_file.exists()  # discarded, not left for the next resume to trip on


async def test_the_pipeline_creates_its_spool_private(harness: Harness) -> None:
    # With leases (PostgreSQL) the start-up sweep does not run: the start itself makes the spool.
    await harness.start(lease_ttl=30.0, owner="only")
    assert mode_of(harness.spool_dir) == 0o700


async def test_a_spool_that_is_a_symbolic_link_is_refused(harness: Harness, tmp_path: Path) -> None:
    # A shared /tmp: another user made the spool's path first, a link to a directory of their choosing.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    harness.spool_dir.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(SpoolUnsafe, match="not a directory"):
        await harness.start(lease_ttl=30.0, owner="only")
    assert mode_of(elsewhere) == 0o755  # not adopted, not tightened
    dangling = Spool(tmp_path / "dangling", harness.client, max_bytes=LIMIT)
    dangling.directory.symlink_to(tmp_path / "nothing-here")
    with pytest.raises(SpoolUnsafe):
        await dangling.keep("job-1", 0, png_for("x", 8, 8))
    assert not (tmp_path / "nothing-here").exists()


async def test_a_spool_owned_by_another_user_is_refused(
    tmp_path: Path, toapis_client: ToAPIsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(directory, 65534, 65534)  # nobody's
    else:
        bot = os.geteuid() + 1
        monkeypatch.setattr(os, "geteuid", lambda: bot)  # the bot runs as someone else than the folder's owner
    spool = Spool(directory, toapis_client, max_bytes=LIMIT)
    with pytest.raises(SpoolUnsafe, match="belongs to another user"):
        spool.remove_all_but(set())
    with pytest.raises(SpoolUnsafe):
        await spool.keep("job-1", 0, png_for("x", 8, 8))
    assert list(directory.iterdir()) == []
