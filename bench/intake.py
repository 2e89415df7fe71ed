"""Intake benchmark: how long the API takes to store a 10,000-item batch, by JSON and by CSV.

Runs the app in-process (TestClient) against a scratch database it creates, migrates and drops
on the test suite's server (its own embedded PostgreSQL, or TEST_ADMIN_DSN). Not a test: it prints.

    .venv/bin/python bench/intake.py [--items 10000] [--rounds 3]
"""

import argparse
import csv
import io
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _items(count: int, asset_ids: list[str]) -> list[dict[str, object]]:
    return [
        {
            "ref": f"sku-{index:05d}",
            "title": f"Product {index}",
            "description": f"A fine product number {index}, made with care. " * 3,
            "images": [asset_ids[index % len(asset_ids)], f"https://cdn.example.com/p/{index}.jpg"],
        }
        for index in range(count)
    ]


def _csv(items: list[dict[str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["ref", "title", "description", "images", "prompt"])
    for item in items:
        images = item["images"]
        assert isinstance(images, list)
        writer.writerow([item["ref"], item["title"], item["description"], "|".join(images), ""])
    return out.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    intake(args.items, args.rounds)


def intake(count: int, rounds: int) -> dict[str, float]:
    """Best seconds to 201 by JSON and by CSV, in a scratch database of its own."""
    from tests.conftest import ADMIN_DSN, TEST_REDIS_URL, url_of_database

    database = f"nemo_bench_{uuid.uuid4().hex[:8]}"
    saved = dict(os.environ)
    os.environ["DATABASE_URL"] = url_of_database(database)
    os.environ["REDIS_URL"] = TEST_REDIS_URL
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with TemporaryDirectory() as storage:
            os.environ["STORAGE_DIR"] = storage
            from core.db import reset_engine
            from core.settings import get_settings

            get_settings.cache_clear()
            reset_engine()
            return run(count, rounds)
    finally:
        from core.db import reset_engine
        from core.settings import get_settings

        reset_engine()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run(count: int, rounds: int) -> dict[str, float]:
    from fastapi.testclient import TestClient
    from PIL import Image

    from api.app import create_app
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant
    from migrations.runner import upgrade

    upgrade(os.environ["DATABASE_URL"])
    with session_scope() as session:
        key = create_api_key(session, get_or_create_tenant(session, "bench"))
    headers = {"Authorization": f"Bearer {key}"}
    client = TestClient(create_app())
    asset_ids = []
    for color in ("red", "green", "blue"):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), color).save(buffer, "PNG")
        answer = client.post(
            "/v1/assets", headers=headers, files={"file": ("p.png", buffer.getvalue())}
        )
        asset_ids.append(answer.json()["id"])
    items = _items(count, asset_ids)
    bodies = {
        "JSON": (json.dumps({"name": "bench", "items": items}).encode(), "application/json"),
        "CSV": (_csv(items), "text/csv"),
    }
    print(f"intake of {count} items, {rounds} rounds each (in-process, wall time per request)")
    best: dict[str, float] = {}
    for label, (body, content_type) in bodies.items():
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            answer = client.post(
                "/v1/batches",
                headers={**headers, "Content-Type": content_type},
                content=body,
                params={"name": "bench"} if label == "CSV" else None,
            )
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.text
        print(
            f"  {label:4} {len(body) / 1e6:5.1f} MB  best {min(timings):.2f} s  "
            f"median {statistics.median(timings):.2f} s"
        )
        best[label] = min(timings)
    return best


if __name__ == "__main__":
    main()
