"""POST /v1/batches with text/csv: one product per row, errors by line and column."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Account, unique_image, upload


def post_csv(client: TestClient, account: Account, text: str | bytes, **params: Any) -> Any:
    body = text.encode() if isinstance(text, str) else text
    headers = {**account.headers, "Content-Type": "text/csv; charset=utf-8"}
    return client.post("/v1/batches", headers=headers, content=body, params=params)


def jobs_of(client: TestClient, account: Account, batch_id: str) -> list[dict[str, Any]]:
    ids = [
        job["id"]
        for job in client.get(f"/v1/batches/{batch_id}/jobs", headers=account.headers).json()[
            "items"
        ]
    ]
    return [client.get(f"/v1/jobs/{job_id}", headers=account.headers).json() for job_id in ids]


def test_a_csv_makes_one_job_per_row_with_batch_fields_from_the_query(
    client: TestClient, account: Account
) -> None:
    answer = post_csv(
        client,
        account,
        "ref,title,description,images,prompt\nsku-1,Mug,Blue mug,,\nsku-2,Cup,,,\n",
        name="From CSV",
        priority="2",
        aspect_ratio="1:1",
        duration_s="20",
        language="fr",
    )
    assert answer.status_code == 201, answer.text
    batch = answer.json()
    assert (batch["name"], batch["priority"], batch["item_count"]) == ("From CSV", 2, 2)
    assert batch["options"] == {"aspect_ratio": "1:1", "duration_s": 20, "language": "fr"}
    first, _second = jobs_of(client, account, batch["id"])
    assert first["ref"] == "sku-1"
    assert first["input"]["messages"][0].startswith(
        'Generate a 20-second 1:1 product video for "Mug"'
    )


def test_a_utf8_bom_is_ignored(client: TestClient, account: Account) -> None:
    answer = post_csv(client, account, "\ufeffref,title\nsku-1,Crème brûlée set\n")
    assert answer.status_code == 201, answer.text
    (job,) = jobs_of(client, account, answer.json()["id"])
    assert job["ref"] == "sku-1"
    assert job["input"]["title"] == "Crème brûlée set"


def test_quoted_fields_keep_commas_and_newlines(client: TestClient, account: Account) -> None:
    text = 'ref,title,description\nsku-1,"Mug, large","Line one,\nline two"\nsku-2,Cup,Plain\n'
    answer = post_csv(client, account, text)
    assert answer.status_code == 201, answer.text
    first, second = jobs_of(client, account, answer.json()["id"])
    assert first["input"]["title"] == "Mug, large"
    assert first["input"]["description"] == "Line one,\nline two"
    assert second["input"]["title"] == "Cup"


def test_images_are_separated_by_pipes_and_may_mix_assets_and_urls(
    client: TestClient, account: Account
) -> None:
    asset = upload(client, account, unique_image()).json()["id"]
    text = f"title,images\nMug, {asset} | https://cdn.example.com/a.jpg ||\n"
    answer = post_csv(client, account, text)
    assert answer.status_code == 201, answer.text
    (job,) = jobs_of(client, account, answer.json()["id"])
    images = job["input"]["images"]
    assert [image.get("asset_id") or image.get("url") for image in images] == [
        asset,
        "https://cdn.example.com/a.jpg",
    ]
    assert all("path" not in image for image in images)


def test_optional_columns_override_per_row(client: TestClient, account: Account) -> None:
    text = (
        "title,aspect_ratio,duration_s,music\nMug,16:9,45,https://cdn.example.com/m.mp3\nCup,,,\n"
    )
    answer = post_csv(client, account, text)
    assert answer.status_code == 201, answer.text
    first, second = jobs_of(client, account, answer.json()["id"])
    assert (first["input"]["aspect_ratio"], first["input"]["duration_s"]) == ("16:9", 45)
    assert first["input"]["music"]["url"] == "https://cdn.example.com/m.mp3"
    assert (second["input"]["aspect_ratio"], second["input"]["duration_s"]) == ("9:16", 15)


def test_short_rows_leave_the_missing_columns_empty(client: TestClient, account: Account) -> None:
    answer = post_csv(client, account, "title,description,images\nMug\nCup,Blue\n")
    assert answer.status_code == 201, answer.text


def test_blank_lines_are_skipped(client: TestClient, account: Account) -> None:
    answer = post_csv(client, account, "title\n\nMug\n,\n\nCup\n")
    assert answer.json()["item_count"] == 2


@pytest.mark.parametrize(
    ("text", "loc", "words"),
    [
        ("", "csv", "empty"),
        ("\ufeff \n", "csv", "empty"),
        ("ref,title,description,images,prompt\n", "csv", "no product rows"),
        ("ref,title,price,colour\nsku,Mug,3,red\n", "line 1", "price, colour"),
        ("ref,description\nsku,Blue\n", "line 1", "title or a prompt"),
        ("title,title\nMug,Cup\n", "line 1", "more than once"),
        ("ref,title\nsku-1,Mug\nsku-2,Cup,extra\n", "line 3", "3 fields"),
        ("ref,title\nsku-1,Mug\nsku-2,\n", "line 3, column title", "title or a prompt"),
        (
            'ref,title,description\nsku-1,Mug,"two\nlines"\nsku-2,Cup,,\nsku-3,,\n',
            "line 5, column title",
            "title or a prompt",
        ),
        ("title,images\nMug,https://a.io/x.jpg|nope\n", "line 2, column images (value 2)", "asset"),
        ("title,duration_s\nMug,999\n", "line 2, column duration_s", "120"),
        ('title\n"unterminated\n', "line 2", "cannot be read"),
    ],
)
def test_csv_errors_name_the_line_and_column(
    client: TestClient, account: Account, text: str, loc: str, words: str
) -> None:
    answer = post_csv(client, account, text)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["error"]["details"][0]
    assert detail["loc"] == loc
    assert words in detail["message"]


def test_a_csv_that_is_not_utf8_is_422_naming_the_line(
    client: TestClient, account: Account
) -> None:
    answer = post_csv(client, account, "title\nMug\nCr\xe8me\n".encode("latin-1"))
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == "line 3"
    assert "UTF-8" in answer.json()["error"]["message"]


def test_bad_query_parameters_are_named(client: TestClient, account: Account) -> None:
    answer = post_csv(client, account, "title\nMug\n", priority="high", aspect_ratio="4:3")
    locs = [detail["loc"] for detail in answer.json()["error"]["details"]]
    assert locs == ["query.priority", "query.aspect_ratio"]


def test_a_csv_referencing_another_tenants_asset_is_422(
    client: TestClient, account: Account, other_account: Account
) -> None:
    theirs = upload(client, other_account, unique_image()).json()["id"]
    answer = post_csv(client, account, f"title,images\nMug,{theirs}\n")
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == "line 2, column images (value 1)"


def test_csv_idempotency_counts_the_query_as_part_of_the_request(
    client: TestClient, account: Account
) -> None:
    key = f"csv-{uuid.uuid4()}"
    headers = {**account.headers, "Content-Type": "text/csv", "Idempotency-Key": key}
    first = client.post(
        "/v1/batches", headers=headers, content=b"title\nMug\n", params={"priority": 1}
    )
    again = client.post(
        "/v1/batches", headers=headers, content=b"title\nMug\n", params={"priority": 1}
    )
    other = client.post(
        "/v1/batches", headers=headers, content=b"title\nMug\n", params={"priority": 2}
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
