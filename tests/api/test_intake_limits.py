"""Intake caps enforced while the body streams: items, field sizes and nesting stop the reading
at the first excess with a 422 naming where; bytes past the limit are a 413."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import Account


@pytest.fixture(scope="module")
def small_app(settings: Any) -> FastAPI:
    from api.app import create_app

    return create_app(settings.model_copy(update={"max_batch_items": 5}))


@pytest.fixture()
def small(small_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(small_app) as client:
        yield client


def post(client: TestClient, account: Account, body: bytes, kind: str) -> Any:
    headers = {**account.headers, "Content-Type": kind}
    return client.post("/v1/batches", headers=headers, content=body)


def test_a_million_empty_items_stop_at_the_item_limit(small: TestClient, account: Account) -> None:
    body = b'{"items": [' + b"{}," * 1_000_000 + b"{}]}"
    answer = post(small, account, body, "application/json")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "too_many_items"
    assert error["details"] == [
        {
            "loc": "items",
            "message": "a batch holds at most 5 items; split the products into several batches",
        }
    ]


def test_the_item_limit_itself_is_accepted(small: TestClient, account: Account) -> None:
    body = b'{"items": [' + b",".join([b'{"title": "Mug"}'] * 5) + b"]}"
    answer = post(small, account, body, "application/json")
    assert answer.status_code == 201, answer.text
    assert answer.json()["item_count"] == 5


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        (b'{"items": [{"title": "' + b"x" * 20_001 + b'"}]}', "items[0].title", "20000"),
        (b'{"name": "' + b"x" * 20_001 + b'", "items": []}', "name", "20000"),
        (b'{"items": [{"title": "a", "x": [[[[[1]]]]]}]}', "items[0].x[0][0]", "deeper"),
        (b'{"items": [{"images": [' + b",".join([b'"a"'] * 300) + b"]}]}", "items[0]", "200"),
        (b'{"junk": [' + b",".join([b"1"] * 300) + b'], "items": []}', "junk", "200"),
    ],
)
def test_an_oversized_value_is_422_naming_it(
    small: TestClient, account: Account, body: bytes, loc: str, words: str
) -> None:
    answer = post(small, account, body, "application/json")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "value_too_large"
    assert error["details"][0]["loc"] == loc
    assert words in error["details"][0]["message"]


def test_problems_in_many_items_are_named_up_to_a_hundred(settings: Any, account: Account) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"max_batch_items": 1000}))
    body = b'{"items": [' + b",".join([b'{"title": 5}'] * 500) + b"]}"
    with TestClient(app) as client:
        answer = post(client, account, body, "application/json")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert len(error["details"]) == 100
    assert error["details"][0]["loc"] == "items[0].title"


def test_a_csv_with_more_rows_than_allowed_stops_at_the_first_extra_row(
    small: TestClient, account: Account
) -> None:
    body = b"title\n" + b"Mug\n" * 3_000_000
    answer = post(small, account, body, "text/csv")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "too_many_items"
    assert error["details"][0]["loc"] == "line 7"
    assert "at most 5 products" in error["details"][0]["message"]


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        (b"title,description\nMug," + b"x" * 20_001 + b"\n", "line 2, column description", "20000"),
        (b"title\n" + b"x" * 300_000 + b"\n", "line 2", "262144 bytes"),
        (b'title\n"' + b"x,\n" * 8_000 + b'"\n', "line 2, column title", "20000"),
    ],
)
def test_an_oversized_csv_value_or_line_is_422_naming_it(
    small: TestClient, account: Account, body: bytes, loc: str, words: str
) -> None:
    answer = post(small, account, body, "text/csv")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "value_too_large"
    assert error["details"][0]["loc"] == loc
    assert words in error["details"][0]["message"]


def test_a_body_past_the_byte_limit_without_a_length_is_413(
    settings: Any, account: Account
) -> None:
    """A chunked body (no Content-Length) is counted as it arrives."""
    from api.app import create_app

    def chunks() -> Iterator[bytes]:
        yield b'{"items": ['
        for _ in range(100):
            yield b'{"title": "Mug"},' * 10

    app = create_app(settings.model_copy(update={"max_request_bytes": 5000}))
    with TestClient(app) as client:
        headers = {**account.headers, "Content-Type": "application/json"}
        answer = client.post("/v1/batches", headers=headers, content=chunks())
    assert answer.status_code == 413
    assert "5000 bytes" in answer.json()["error"]["message"]


def test_an_idempotent_replay_of_a_streamed_body_returns_the_first_batch(
    small: TestClient, account: Account
) -> None:
    headers = {**account.headers, "Content-Type": "text/csv", "Idempotency-Key": "streamed-1"}
    body = b"title\nMug\nCup\n"
    first = small.post("/v1/batches", headers=headers, content=body, params={"name": "a"})
    again = small.post("/v1/batches", headers=headers, content=body, params={"name": "a"})
    other = small.post("/v1/batches", headers=headers, content=body, params={"name": "b"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"items": [' + b"{}," * 10 + b"]]] not JSON at all", "application/json"),
        (b"title\n" + b"Mug\n" * 10 + b"\xff\xfe not UTF-8\n", "text/csv"),
    ],
)
def test_the_parser_stops_at_the_first_excess_and_reads_no_further(
    small: TestClient, account: Account, body: bytes, kind: str
) -> None:
    """What follows the sixth item is never parsed: a body broken after it still answers 422
    too_many_items, not a complaint about the break."""
    answer = post(small, account, body, kind)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "too_many_items"
