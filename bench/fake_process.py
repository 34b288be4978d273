"""A fake M2-her in a child process, so its work does not share the benchmark's GIL.

A bench script serves with :func:`serve_until_stdin_closes` when started with ``--serve``,
and measures against :func:`fake_in_child` otherwise.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.llm.fake import FakeM2Her


async def serve_until_stdin_closes(fake: FakeM2Her) -> None:
    """In the child: print the running ``fake``'s URL, then serve until stdin closes."""
    print(fake.base_url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


@asynccontextmanager
async def fake_in_child(script: str, *args: str) -> AsyncIterator[str]:
    """Run ``script --serve *args`` in a child process; yield the URL of its fake."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        "--serve",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        yield (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
    finally:
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 10)
