"""The subprocess harness of the end-to-end tests: lines, patterns, signals, exit codes, polling."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from tests.e2e.harness import ProcessFailed, ScriptProcess, wait_until


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(body))
    return path


async def test_lines_are_captured_and_waited_for_in_order(tmp_path: Path) -> None:
    child = script(
        tmp_path,
        """
        import os, sys
        print("first", os.environ["GREETING"])
        print("second", file=sys.stderr)
        print("third 42")
        """,
    )

    async with ScriptProcess.start(child, env={"GREETING": "hello"}) as process:
        match = await process.wait_for_line(r"third (\d+)", timeout=10)
        code = await process.wait_exit(10)

    assert match.group(1) == "42"
    assert process.lines == ["first hello", "second", "third 42"]
    assert code == 0
    assert [m.group(0) for m in process.matching("^(first|third)")] == ["first", "third"]


async def test_waiting_for_a_line_fails_fast_when_the_process_exits_without_it(tmp_path: Path) -> None:
    child = script(tmp_path, "print('only this')\nraise SystemExit(3)\n")

    async with ScriptProcess.start(child, env={}) as process:
        with pytest.raises(ProcessFailed, match=r"exited \(3\)[\s\S]*only this"):
            await process.wait_for_line("never", timeout=30)


async def test_waiting_for_a_line_times_out_with_the_output(tmp_path: Path) -> None:
    child = script(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")

    async with ScriptProcess.start(child, env={}) as process:
        await process.wait_for_line("started", timeout=10)
        with pytest.raises(ProcessFailed, match=r"within 0\.2s[\s\S]*started"):
            await process.wait_for_line("never", timeout=0.2)

    assert process.returncode == -signal.SIGTERM


async def test_sigterm_lets_the_script_exit_with_its_own_code(tmp_path: Path) -> None:
    child = script(
        tmp_path,
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), sys.exit(0)))
        print("ready", flush=True)
        time.sleep(60)
        """,
    )

    async with ScriptProcess.start(child, env={}) as process:
        await process.wait_for_line("ready", timeout=10)
        code = await process.terminate()

    assert code == 0
    assert process.lines[-1] == "bye"


async def test_sigkill_ends_it_like_a_crash(tmp_path: Path) -> None:
    child = script(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """,
    )

    async with ScriptProcess.start(child, env={}) as process:
        await process.wait_for_line("ready", timeout=10)
        code = await process.kill()

    assert code == -signal.SIGKILL
    assert not process.running


async def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    child = script(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """,
    )
    process = await ScriptProcess.spawn(child, env={})
    await process.wait_for_line("ready", timeout=10)

    code = await process.stop(grace=0.2)

    assert code == -signal.SIGKILL


async def test_wait_until_returns_the_truthy_value_or_times_out(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    child = script(tmp_path, f"open({str(marker)!r}, 'w').write('done')\n")

    async with ScriptProcess.start(child, env={}) as process:
        text = await wait_until(lambda: marker.exists() and marker.read_text(), timeout=10)
        await process.wait_exit(10)

    async def never() -> bool:
        return False

    assert text == "done"
    with pytest.raises(TimeoutError, match="nothing"):
        await wait_until(never, timeout=0.05, what="nothing")
