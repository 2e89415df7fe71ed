"""`nemo-batch demo` end to end, as a user runs it: its own database, Redis db and processes."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import av
import psycopg
import pytest

from tests.conftest import ADMIN_DSN

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_REDIS_DB = "11"


@pytest.fixture()
def demo_database() -> Iterator[str]:
    name = f"nemo_demo_test_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.timeout(240)
def test_the_demo_turns_the_example_csv_into_eight_videos_and_stops_everything(
    tmp_path: Path, demo_database: str
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NEMO_API_BASE", "NEMO_TOKEN", "STORAGE_DIR"}
    }
    env |= {"NEMO_DEMO_DATABASE": demo_database, "NEMO_DEMO_REDIS_DB": DEMO_REDIS_DB}
    output = tmp_path / "output"

    finished = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo",
         "--csv", str(REPO_ROOT / "examples" / "products.csv"), "--output", str(output),
         "--time-scale", "0.01", "--timeout", "200"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=230,
    )  # fmt: skip

    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    videos = sorted(output.glob("*.mp4"))
    assert len(videos) == 8, finished.stdout[-3000:]
    assert len(list(output.glob("*.jpg"))) == 8
    for video in videos:
        with av.open(str(video)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
    assert "every job succeeded" in finished.stdout
    for ref in ("mug-blue", "sneaker-red", "plant-pot"):
        assert ref in finished.stdout
    assert not list((tmp_path / "var" / "demo").glob("run-*")), "a successful run cleans up"
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "var" / "demo")], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "every process the demo started is gone"
