"""Fixtures for the emulator suite: one ideal emulator per module, real HTTP over loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # so `tests.support` imports under the pytest script too
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.emulator_proc import EmulatorProcess, start_emulator  # noqa: E402

REGISTERED_TOKEN = "nmv_usr_registered_test_token"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    proc = start_emulator(
        tmp_path_factory.mktemp("emu"),
        profile="ideal",
        time_scale=0.01,
        tokens=[REGISTERED_TOKEN],
        render_scale=0.25,
    )
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def _fresh_state(request: pytest.FixtureRequest) -> None:
    """Tests using `emu` start from an empty backend (the render cache survives)."""
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").control("reset")
