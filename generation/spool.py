"""Where a job's results wait between download and delivery: one folder per job, one file per result.

Files, not memory: many jobs finishing at once must not hold their images in RAM. A result is named by its
index, so a job resumed after a crash finds what was already downloaded; what is missing is downloaded again
from its URL (valid for a day) or, for a result that came as bytes, is gone.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generation.events import GeneratedImage
from generation.images import EXTENSIONS, sniff_mime_type
from toapis import ToAPIsClient, ToAPIsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spooled:
    """What the spool holds of a job's results, and what went wrong with the others (one line each)."""

    images: tuple[GeneratedImage, ...]
    problems: tuple[str, ...]


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
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write)
        return str(path)

    async def gather(self, job_id: str, sources: Sequence[str]) -> Spooled:
        """The job's results as files, downloading (all at once) any that are missing; twice at most each,
        since a files host that refused once may well answer the second time."""
        folder = self.folder(job_id)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        paths = [folder / f"{index}.img" for index in range(len(sources))]
        outcomes = list(await asyncio.gather(*map(self._one, paths, sources)))
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
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    async def _one(self, path: Path, source: str) -> GeneratedImage | str:
        """One result in the spool, downloaded if missing; a string says what went wrong."""
        if await asyncio.to_thread(path.exists):
            mime_type = sniff_mime_type(await asyncio.to_thread(_read_head, path))
            size = (await asyncio.to_thread(path.stat)).st_size
        elif not source.startswith(("http://", "https://")):
            return "gone from the spool"
        else:
            try:
                downloaded = await self._client.download_image(source, max_bytes=self._max_bytes, dest=path)
            except ToAPIsError as exc:
                return str(exc)
            # The client checked that it is an image; its type is known without reading the file again.
            mime_type = downloaded.content_type if downloaded.content_type in EXTENSIONS else None
            if mime_type is None:
                mime_type = sniff_mime_type(await asyncio.to_thread(_read_head, path))
            size = downloaded.size
        if mime_type is None:
            return "not an image"
        return GeneratedImage(path, mime_type, size)


def _read_head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(16)
