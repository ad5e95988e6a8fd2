"""`collectord simulate` prints the config lines that point collectord at it, and they work."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from conftest import free_port

pytestmark = pytest.mark.integration


async def test_the_printed_config_lines_let_once_collect_from_the_simulator(
    tmp_path: Path,
) -> None:
    port = free_port()
    sim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collectord",
        "simulate",
        "--listen",
        f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert sim.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            # the last source printed is the media one; its id line ends the block
            while not ('name = "sim-instagram-media"' in lines and lines[-1].startswith("ig_")):
                line = (await sim.stdout.readline()).decode()
                assert line, "the simulator ended before printing its config lines"
                lines.append(line.rstrip("\n"))
        start = lines.index("# collector.toml lines that point collectord at this simulator:")
        config = tmp_path / "collector.toml"
        config.write_text(
            f'[collector]\nstate_dir = "{tmp_path / "state"}"\n\n' + "\n".join(lines[start:]) + "\n"
        )
        once = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collectord",
            "once",
            "-c",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )
        out, err = await asyncio.wait_for(once.communicate(), 120)
        assert once.returncode == 0, err.decode()
        text = out.decode()
        for family in ("facebook_page_", "facebook_post_", "instagram_user_", "instagram_media_"):
            assert f"\n{family}" in text or text.startswith(family), family
    finally:
        sim.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sim.wait(), 15)
    assert sim.returncode == 0
