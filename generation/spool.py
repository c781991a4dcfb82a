"""Where a job's results wait between download and delivery: one folder per job, one file per result.

Files, not memory: many jobs finishing at once must not hold their images in RAM. A result is named by its
index, so a job resumed after a crash finds what was already downloaded; what is missing is downloaded again
from its URL (valid for a day) or, for a result that came as bytes, is gone. A file found there is trusted only
once it checks out as a whole image within the size limit; one that does not is treated as missing.

The spool is private to the bot (mode 0700, tightened if found looser): members' results are nobody else's.
In a shared temporary folder (PostgreSQL deployments spool there) another user may have made the path first:
a spool that is a symbolic link or another user's directory is refused (`SpoolUnsafe`), never adopted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generation.events import GeneratedImage
from generation.images import check_image_file
from toapis import ToAPIsClient, ToAPIsError
from toapis.mime import EXTENSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spooled:
    """What the spool holds of a job's results, and what went wrong with the others (one line each)."""

    images: tuple[GeneratedImage, ...]
    problems: tuple[str, ...]


class SpoolUnsafe(Exception):
    """The spool's path is not a directory of the bot's own: a symbolic link, a file, or another user's."""


class Spool:
    def __init__(self, directory: Path, client: ToAPIsClient, *, max_bytes: int) -> None:
        self.directory = directory
        self._client = client
        self._max_bytes = max_bytes

    def folder(self, job_id: str) -> Path:
        return self.directory / job_id

    async def keep(self, job_id: str, index: int, data: bytes) -> str:
        """Write a result that came as bytes; returns where it is (the job's source for that result)."""
        path = self.folder(job_id) / f"{index}.img"

        def write() -> None:
            self._make_folder(path.parent)
            # Written aside, then renamed: a crash mid-write leaves no half file under the result's name.
            part = path.with_name(path.name + ".part")
            part.write_bytes(data)
            os.replace(part, path)

        await asyncio.to_thread(write)
        return str(path)

    async def gather(self, job_id: str, sources: Sequence[str]) -> Spooled:
        """The job's results as files, downloading (all at once) any that are missing; twice at most each,
        since a files host that refused once may well answer the second time."""
        folder = self.folder(job_id)
        paths = [folder / f"{index}.img" for index in range(len(sources))]
        # The folder and what it already holds in one trip to a thread: with many jobs completing at once, each
        # trip waits for the loop to come round again.
        found = await asyncio.to_thread(self._found, folder, paths)
        first = [
            self._one(path, source, known, looked=True)
            for path, source, known in zip(paths, sources, found, strict=True)
        ]
        outcomes = list(await asyncio.gather(*first))
        again = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, str)]
        if again:
            retried = await asyncio.gather(*(self._one(paths[i], sources[i]) for i in again))
            for index, outcome in zip(again, retried, strict=True):
                outcomes[index] = outcome
        images = tuple(outcome for outcome in outcomes if isinstance(outcome, GeneratedImage))
        problems = tuple(f"result {i}: {outcome}" for i, outcome in enumerate(outcomes) if isinstance(outcome, str))
        return Spooled(images, problems)

    async def remove(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.folder(job_id), True)

    def remove_all_but(self, keep: set[str]) -> None:
        """At start-up, before any job runs: the folders of jobs that are no longer unfinished go."""
        self.make_private()
        for path in self.directory.iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def make_private(self) -> None:
        """Create the spool directory with mode 0700, or take group and other permissions off an existing one of
        ours; `SpoolUnsafe` if the path is a symbolic link, not a directory, or another user's."""
        with contextlib.suppress(FileExistsError):
            self.directory.mkdir(mode=0o700, parents=True)
        found = self.directory.lstat()  # not following a link: the path itself must be ours
        if not stat.S_ISDIR(found.st_mode):
            raise SpoolUnsafe(f"The spool {self.directory} is not a directory (a symbolic link?): remove it")
        if found.st_uid != os.geteuid():
            raise SpoolUnsafe(
                f"The spool {self.directory} belongs to another user (uid {found.st_uid}): remove it, or run the "
                "bot as its owner"
            )
        mode = stat.S_IMODE(found.st_mode)
        if mode & 0o077:
            log.info("the spool %s was open to others (mode %o): made private (0700)", self.directory, mode)
            self.directory.chmod(0o700)

    def _make_folder(self, folder: Path) -> None:
        self.make_private()
        folder.mkdir(mode=0o700, exist_ok=True)

    def _found(self, folder: Path, paths: Sequence[Path]) -> list[GeneratedImage | None]:
        self._make_folder(folder)
        return [self._trusted(path) for path in paths]

    async def _one(
        self, path: Path, source: str, found: GeneratedImage | None = None, *, looked: bool = False
    ) -> GeneratedImage | str:
        """One result in the spool (`found` there, if `looked` already), downloaded if missing (or not whole); a
        string says what went wrong."""
        if not looked:
            found = await asyncio.to_thread(self._trusted, path)
        if found is not None:
            return dataclasses.replace(found, source=source)
        if not source.startswith(("http://", "https://")):
            return "gone from the spool"
        try:
            downloaded = await self._client.download_image(source, max_bytes=self._max_bytes, dest=path)
        except ToAPIsError as exc:
            return str(exc)
        # The client checked the bytes before writing them: their type is known without reading the file again.
        if downloaded.content_type not in EXTENSIONS:
            return "not an image"
        return GeneratedImage(path, downloaded.content_type, downloaded.size, source)

    def _trusted(self, path: Path) -> GeneratedImage | None:
        """A file already in the spool, if it is a whole image within the limit; otherwise it is discarded."""
        if not path.exists():
            return None
        checked = check_image_file(path, max_bytes=self._max_bytes)
        if checked is None:
            log.warning("discarding %s from the spool: not a whole image within %d bytes", path, self._max_bytes)
            path.unlink(missing_ok=True)
            return None
        mime_type, size = checked
        return GeneratedImage(path, mime_type, size)
