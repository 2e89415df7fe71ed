"""The web page's server side: its files, its sign-in cookie, and the products it pages through."""

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import Account, create_batch, job_ids, update_job
from tests.api.test_manifest import finish


def signed_in(app: object, account: Account) -> TestClient:
    """A client of its own (cookies are per client), signed in as the page does."""
    client = TestClient(app)  # type: ignore[arg-type]
    answer = client.post("/ui/session", json={"key": account.key})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tenant": account.name}
    return client


def test_the_page_and_its_assets_come_from_the_api_with_a_strict_policy(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    for asset in ("/static/app.js", "/static/app.css", "/static/icon.svg"):
        assert asset in page.text
        assert client.get(asset).status_code == 200, asset
    assert "http" not in page.text.replace("http-equiv", ""), "no CDN: every asset is local"
    assert client.get("/static/index.html").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_signing_in_keeps_the_key_in_an_httponly_samesite_cookie(
    app: object, account: Account
) -> None:
    client = TestClient(app)  # type: ignore[arg-type]
    answer = client.post("/ui/session", json={"key": account.key})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("nemo_batch_key=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert account.key not in answer.text, "the key is never in an answer"
    assert client.get("/ui/session").json() == {"tenant": account.name}
    assert client.get("/v1/batches").status_code == 200, "every /v1 route takes the cookie"


def test_a_wrong_or_empty_key_signs_nobody_in(app: object) -> None:
    client = TestClient(app)  # type: ignore[arg-type]
    wrong = client.post("/ui/session", json={"key": "nb_not_a_key"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert client.post("/ui/session", json={"key": ""}).status_code == 422
    assert client.post(
        "/ui/session", content=b"{", headers={"content-type": "application/json"}
    ).status_code in (400, 422)
    assert client.get("/ui/session").status_code == 401
    # A form on another site can post text/plain that looks like JSON; it is not read as JSON.
    forged = client.post(
        "/ui/session", content=b'{"key": "x"}', headers={"content-type": "text/plain"}
    )
    assert forged.status_code == 422 and "set-cookie" not in forged.headers


def test_a_change_by_cookie_needs_the_page_header(app: object, account: Account) -> None:
    """A cross-site form cannot set a header, so a forged POST riding the cookie is refused."""
    client = signed_in(app, account)
    batch = create_batch(client, account)
    (job_id,) = job_ids(client, account, batch["id"])
    forged = client.post(f"/v1/jobs/{job_id}/cancel", headers={"Authorization": ""})
    assert forged.status_code == 401
    assert "X-Nemo-Batch-Page" in forged.json()["error"]["message"]
    page = client.post(f"/v1/jobs/{job_id}/cancel", headers={"X-Nemo-Batch-Page": "1"})
    assert page.status_code == 200 and page.json()["state"] == "canceled"


def test_signing_out_forgets_the_cookie(app: object, account: Account) -> None:
    client = signed_in(app, account)
    assert client.delete("/ui/session").status_code == 204
    assert client.get("/v1/batches").status_code == 401


def test_another_tenants_batch_is_a_404_to_the_page(
    app: object, account: Account, other_account: Account
) -> None:
    client = signed_in(app, other_account)
    batch = create_batch(client, account)
    assert client.get(f"/v1/batches/{batch['id']}/products").status_code == 404
    assert client.get(f"/v1/batches/{batch['id']}").status_code == 404


def test_products_come_a_page_at_a_time_with_state_in_words_and_advice(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    items = [{"ref": f"sku-{index}", "title": f"Product {index}"} for index in range(130)]
    batch = create_batch(client, account, items=items)
    ids = job_ids(client, account, batch["id"])
    finish(storage_dir, ids[0], b"a video" * 30)
    update_job(ids[1], state="failed", error_code="media_too_large", error_message="too big")
    url = f"/v1/batches/{batch['id']}/products"

    first = client.get(url, headers=account.headers, params={"limit": 100}).json()
    rest = client.get(
        url, headers=account.headers, params={"cursor": first["next_cursor"], "limit": 100}
    ).json()

    assert [item["ref"] for item in first["items"] + rest["items"]] == [i["ref"] for i in items]
    assert rest["next_cursor"] is None
    ready, failed, queued = first["items"][:3]
    assert (ready["state_text"], ready["advice"]) == ("Ready", None)
    assert ready["video_url"].endswith(f"/v1/jobs/{ids[0]}/video") and ready["poster_url"]
    assert (failed["state_text"], failed["error_message"]) == ("Failed", "too big")
    assert "below 200 MB" in failed["advice"]
    assert (queued["state_text"], queued["video_url"]) == ("Waiting its turn", None)
    only_failed = client.get(url, headers=account.headers, params={"state": "failed"}).json()
    assert [item["ref"] for item in only_failed["items"]] == ["sku-1"]
    bad = client.get(url, headers=account.headers, params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_every_state_a_job_can_be_in_has_words_for_the_page() -> None:
    """A state without words would break the products page (a 500) for any batch holding it."""
    from api.advice import STATE_WORDS
    from core.states import JobState

    assert set(STATE_WORDS) == set(JobState)
    assert all(words.strip() for words in STATE_WORDS.values())
