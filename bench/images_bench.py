"""What reference images cost: `python bench/images_bench.py` prints one table.

- Preparing one request with four 29 MB, 49-megapixel JPEGs (7000×7000: smooth colour, a coarse texture and a
  fine grain, so that quality 95 gives about 29 MB), as a request does: the four in one call of
  `generation.validation.prepare_references`. Each run is a fresh subprocess, which reports the CPU seconds of
  that call (`time.process_time`: every thread of the process) and its own peak RSS (VmHWM, which includes the
  116 MB of the four files it holds, as the bot holds a request's attachments). Medians of 3 runs.
  BEFORE is the code as it was before references were fitted to the model (commit 0abc40a, extracted with
  `git archive` into a temporary folder; `--before REF` for another); AFTER is this checkout, and the same with
  other `max_side` values (`--what-if PX ...`, default 1536) shows what the assumed 2048 costs.
- Database growth per 1,000 jobs with four references each, when the stored references are the prepared bytes:
  four camera-like 12-megapixel JPEGs (4032×3024, quality 92, about 4 MB: a phone photo) are prepared by the
  code measured, and each job stores four of them on a fresh SQLite file through `storage.store.Storage`. Every
  reference is made distinct (a JPEG comment naming the job, 30 bytes) so that none is shared by its hash, as
  members' photos would not be. The growth of the database folder (file, WAL and shared memory) is reported,
  jobs included. BEFORE stores 100 jobs (its references are 4 MB each) and is scaled to 1,000.
  `--photos DIR` measures with the first four JPEGs in DIR instead (real photos make the better figure).

The generated images are cached in the system's temporary folder (imagine-bench-images/): generating them takes
about a minute, once.

Recorded 2026-12-06 on the 2-core x86_64 development machine (shared with other work), Python 3.11.7, Pillow 13.0:
    four 49 MP JPEGs, before: 44.6 s CPU, 676 MB peak; after: 1.41 s CPU, 188 MB peak. A JPEG's entropy
    decoding costs about 0.25 s for each of these files at any scale; decoding at 1/2 (3500 px) and resizing to
    exactly 2048 px cost 0.6 s each (2.1-2.5 s for the four), so a JPEG whose 1/4 scale (1750 px) is within 15 %
    of the target stands at that scale (generation/images.py, DCT_SLACK).
    database growth per 1,000 jobs x 4 references: before 15,494 MB (3.87 MB each); after 4,497 MB (1.12 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parent.parent
BEFORE_REF = "0abc40a"
RUNS = 3
CACHE = Path(tempfile.gettempdir()) / "imagine-bench-images"
BIG = (7000, 7000)
PHOTO = (4032, 3024)
JOBS = 1_000
BEFORE_JOBS = 100
REFERENCES_PER_JOB = 4


# --- the images ----------------------------------------------------------------------------------------------


def camera_like(width: int, height: int, *, texture: float, grain: float, seed: int) -> Image.Image:
    """Smooth colour, a coarse texture (detail a downscale keeps) and a fine grain (sensor noise)."""
    channels = []
    for channel in range(3):
        angle = (seed * 37 + channel * 110) % 360
        base = Image.linear_gradient("L").rotate(angle).resize((width, height))
        coarse = Image.effect_noise((max(1, width // 6), max(1, height // 6)), texture)
        coarse = coarse.resize((width, height), Image.Resampling.BICUBIC)
        fine = Image.effect_noise((width, height), grain)
        channels.append(ImageChops.add(ImageChops.add(base, coarse, offset=-128), fine, offset=-128))
    return Image.merge("RGB", channels)


def cached_jpegs(name: str, size: tuple[int, int], *, quality: int, texture: float, grain: float) -> list[Path]:
    folder = CACHE / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{index}.jpg" for index in range(REFERENCES_PER_JOB)]
    for index, path in enumerate(paths):
        if not path.exists():
            print(f"# generating {path}", file=sys.stderr, flush=True)
            image = camera_like(*size, texture=texture, grain=grain, seed=index)
            part = path.with_suffix(".part")
            image.save(part, format="JPEG", quality=quality)
            part.replace(path)
    return paths


# --- one measurement, in a fresh subprocess ------------------------------------------------------------------


def peak_rss_kb() -> int:
    """This process's peak RSS. VmHWM where Linux has it: ru_maxrss also counts the parent's memory at the fork
    that started this process (the kernel keeps the larger of the two across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(root: str, out: str, max_side: int, files: list[str]) -> None:
    """Prepare `files` as one request with the code under `root`; print the CPU seconds and peak RSS as JSON."""
    sys.path.insert(0, root)
    from generation.validation import prepare_references

    blobs = [Path(file).read_bytes() for file in files]
    started = time.process_time()
    # The code before had no max_side.
    prepared = asyncio.run(prepare_references(blobs, max_side=max_side) if max_side else prepare_references(blobs))
    cpu = time.process_time() - started
    peak_kb = peak_rss_kb()
    if out:
        for index, image in enumerate(prepared):
            (Path(out) / f"{index}.{image.mime_type.split('/')[1]}").write_bytes(image.data)
    shapes = [(image.mime_type, image.width, image.height, len(image.data)) for image in prepared]
    print(json.dumps({"cpu": cpu, "peak_mb": peak_kb / 1024, "prepared": shapes}))


@dataclass(frozen=True)
class Preparation:
    """One request's preparation: CPU seconds, peak RSS, and what came out (type, width, height, bytes)."""

    cpu: float
    peak_mb: float
    prepared: list[tuple[str, int, int, int]]


def run_worker(root: Path, files: list[Path], out: Path | None = None, max_side: int = 0) -> Preparation:
    command = [sys.executable, __file__, "--worker", str(root), str(out or ""), str(max_side), *map(str, files)]
    answer = subprocess.run(command, check=True, capture_output=True, text=True, cwd=root)
    result = json.loads(answer.stdout)
    return Preparation(float(result["cpu"]), float(result["peak_mb"]), [tuple(shape) for shape in result["prepared"]])


def extract(ref: str, into: Path) -> Path | None:
    """The code of `ref` (generation/ and toapis/) in `into`, or None when git cannot give it."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "generation", "toapis"], capture_output=True
    )
    if archive.returncode != 0:
        print(f"# no BEFORE: git archive {ref} failed: {archive.stderr.decode().strip()}", file=sys.stderr)
        return None
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure_preparation(root: Path, files: list[Path], runs: int, max_side: int = 0) -> Preparation:
    results = [run_worker(root, files, max_side=max_side) for _ in range(runs)]
    return Preparation(
        cpu=statistics.median(result.cpu for result in results),
        peak_mb=statistics.median(result.peak_mb for result in results),
        prepared=results[0].prepared,
    )


# --- database growth -----------------------------------------------------------------------------------------


def distinct(jpeg: bytes, tag: str) -> bytes:
    """The same JPEG with a comment segment naming `tag` after its start marker: other bytes, same picture."""
    assert jpeg.startswith(b"\xff\xd8"), "distinct() needs JPEG references"
    payload = tag.encode().ljust(26)
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


async def database_growth_mb(references: list[bytes], jobs: int) -> float:
    """MB the database grows by for `jobs` jobs of four distinct references, scaled to 1,000 jobs."""
    from storage.store import Storage

    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'imagine.db'}"
        await (await Storage.open(url)).close()  # the schema, migrated: not part of the growth
        empty = folder_bytes(Path(folder))
        async with await Storage.open(url) as store:
            for number in range(jobs):
                job = await store.jobs.create(
                    guild_id=1,
                    channel_id=2,
                    user_id=3 + number % 50,
                    kind="imagine",
                    prompt=f"a lighthouse at dusk, in the style of reference {number}",
                    n=1,
                    model="gpt-image-2",
                    reference_count=REFERENCES_PER_JOB,
                )
                images = [
                    (distinct(references[(number + position) % len(references)], f"{number}:{position}"), "image/jpeg")
                    for position in range(REFERENCES_PER_JOB)
                ]
                await store.references.save(job.id, images)
        grown = folder_bytes(Path(folder)) - empty
    return grown / 1_000_000 * JOBS / jobs


def prepared_photos(root: Path, photos: list[Path], into: Path) -> list[bytes]:
    into.mkdir()
    run_worker(root, photos, out=into)
    return [path.read_bytes() for path in sorted(into.iterdir())]


# --- the table -----------------------------------------------------------------------------------------------


def describe(preparation: Preparation) -> str:
    shapes = {f"{mime.split('/')[1]} {width}×{height}" for mime, width, height, _ in preparation.prepared}
    largest = max(size for *_, size in preparation.prepared)
    return f"{', '.join(sorted(shapes))}, largest {largest / 1e6:.1f} MB"


def main(arguments: argparse.Namespace) -> None:
    started = time.perf_counter()
    big = cached_jpegs("49mp", BIG, quality=95, texture=40.0, grain=8.0)
    if arguments.photos:
        photos = sorted(Path(arguments.photos).glob("*.jp*g"))[:REFERENCES_PER_JOB]
        if len(photos) < REFERENCES_PER_JOB:
            raise SystemExit(f"--photos needs {REFERENCES_PER_JOB} JPEGs in {arguments.photos}")
    else:
        photos = cached_jpegs("photos", PHOTO, quality=92, texture=30.0, grain=4.0)
    big_mb = statistics.mean(path.stat().st_size for path in big) / 1e6
    photo_mb = statistics.mean(path.stat().st_size for path in photos) / 1e6
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as scratch:
        before = extract(arguments.before, Path(scratch) / "before")
        roots = {"before": before, "after": ROOT} if before is not None else {"after": ROOT}
        variants = [(label, root, 0) for label, root in roots.items()]
        variants += [(f"what if max_side were {side}", ROOT, side) for side in arguments.what_if]
        for label, root, max_side in variants:
            print(f"# {label}: preparing the four 49 MP JPEGs, {arguments.runs} runs", file=sys.stderr, flush=True)
            figures = measure_preparation(root, big, arguments.runs, max_side)
            note = describe(figures) + ("; target < 1.5 s, < 300 MB" if label == "after" else "")
            rows.append((f"{label}: four {big_mb:.0f} MB 49 MP JPEGs, CPU", f"{figures.cpu:.2f} s", note))
            rows.append((f"{label}: same, peak RSS of the process", f"{figures.peak_mb:.0f} MB", "incl. the 4 files"))
        for label, root in roots.items():
            print(f"# {label}: database growth", file=sys.stderr, flush=True)
            references = prepared_photos(root, photos, Path(scratch) / f"photos-{label}")
            jobs = BEFORE_JOBS if label == "before" else JOBS
            growth = asyncio.run(database_growth_mb(references, jobs))
            each = statistics.mean(map(len, references)) / 1e6
            scaled = f"{jobs} jobs, x{JOBS // jobs}" if jobs != JOBS else f"{jobs:,} jobs"
            rows.append(
                (
                    f"{label}: DB growth per 1,000 jobs x 4 references",
                    f"{growth:,.0f} MB",
                    f"{photo_mb:.1f} MB photos stored as {each:.2f} MB each; {scaled}",
                )
            )
    from bench.run import print_table  # here: the --worker processes need none of it

    print_table(f"Imagine reference images ({arguments.runs} runs each, medians)", rows, started)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
        raise SystemExit(0)
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--before", default=BEFORE_REF, help="the git ref whose code is BEFORE (default %(default)s)")
    parser.add_argument("--photos", metavar="DIR", help="measure the database growth with four JPEGs from DIR")
    parser.add_argument(
        "--what-if", type=int, nargs="*", default=[1536], metavar="PX", help="also prepare with these max_side values"
    )
    main(parser.parse_args())
