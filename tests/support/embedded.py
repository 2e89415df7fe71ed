"""Finding the embedded servers of a folder, for tests of their lifecycle."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import psutil
import pytest


def servers_of(folder: Path) -> list[psutil.Process]:
    """The postmaster (named by its -D argument) or redis-server (which runs in its folder, its
    command line rewritten to host:port) that serves `folder`."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if f"postgres -D {folder}/" in cmdline or (
            process.info["name"] == "redis-server" and process.info["cwd"] == str(folder)
        ):
            found.append(process)
    return found


@pytest.fixture()
def folder_root() -> Iterator[Path]:
    """A folder outside pytest's temporary root, which pytest makes private (0700) to every
    other user at the start of each session: as root, the embedded PostgreSQL runs as a user
    of its own that must reach its folder."""
    root = Path(tempfile.mkdtemp(prefix="nemo-embedded-test-"))
    yield root
    _stop_everything_in(root)
    shutil.rmtree(root, ignore_errors=True)


def _stop_everything_in(root: Path) -> None:
    """A test that failed half-way may leave a command, a keeper or a server running in the
    folder: stop them before the folder goes, or they would outlive it, orphaned."""
    inside = []
    for process in psutil.process_iter(["cwd", "cmdline"]):
        cwd = process.info["cwd"] or ""
        cmdline = " ".join(process.info["cmdline"] or [])
        if cwd.startswith(str(root)) or str(root) in cmdline:
            inside.append(process)
    for process in inside:
        with suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(inside, timeout=10)
