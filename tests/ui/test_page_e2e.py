"""The web page in a real headless Chromium against a real stack: sign in, drop a CSV, watch the
batch finish against the emulator, play a video, retry a failed job, sign out. Screenshots at
desktop and phone widths are kept as artifacts (tests/ui/conftest.py: `keep`)."""

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.ui.conftest import DESKTOP, PHONE, keep, served_api
from tests.worker.stack import running_stack

FINISHED = ("succeeded", "completed_with_failures", "failed", "canceled")
BAD_CSV = "ref,title,description,images,prompt\nok-1,A mug,,,\nbad-2,,,,\n"


def drop_csv(page: Any, name: str, text: str) -> None:
    """What a person's drag and drop does: a `drop` event whose DataTransfer holds the file."""
    transfer = page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/csv" }));
            return transfer;
        }""",
        [name, text],
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def new_key() -> tuple[str, str]:
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant

    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"page-{uuid.uuid4().hex[:6]}")
        return tenant.name, create_api_key(session, tenant)


def product_csv(api: str, key: str) -> str:
    """Two products with a photo each, and one whose raw prompt the agent cannot act on (it
    fails `no_result`: the failed job the page retries)."""
    headers = {"Authorization": f"Bearer {key}"}
    from tests.api.conftest import png_bytes

    ids = []
    for color in ("#2f9e44", "#e8590c"):
        files = {"file": ("photo.png", png_bytes(color, (96, 128)), "image/png")}
        answer = httpx.post(f"{api}/v1/assets", headers=headers, files=files, timeout=10)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return (
        "ref,title,description,images,prompt\n"
        f"mug-green,Green mug,A green stoneware mug,{ids[0]},\n"
        f"lamp-orange,Orange lamp,A bright desk lamp,{ids[1]},\n"
        "ask-1,,,,who are you and what can you do?\n"
    )


def schedule(api: str, key: str) -> None:
    body = {"name": "nightly catalogue", "cron": "0 2 1 1 *", "timezone": "Europe/Paris",
            "items": [{"ref": "mug-1", "title": "Blue mug"}]}  # fmt: skip
    answer = httpx.post(
        f"{api}/v1/schedules", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def test_a_person_signs_in_drops_a_csv_watches_plays_retries_and_signs_out(
    tmp_path: Path, settings: Any, browser: Any
) -> None:
    extra = {"VERIFY_TIMEOUT_S": "3", "MAX_STEP_ATTEMPTS": "2"}
    with running_stack(tmp_path, time_scale=0.01, settings=extra), served_api() as api:
        tenant, key = new_key()
        schedule(api, key)
        # Playwright's waits evaluate strings, which the page's CSP (no eval) would refuse;
        # tests/api/test_page.py checks the policy itself.
        context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))

        page.goto(api)
        page.wait_for_selector("#signin-form")
        keep(page, "signin-desktop.png")
        page.fill("#key", "nb_wrong_key")
        page.click("#signin-form button")
        page.wait_for_selector("#signin-error:text('not valid')")
        page.fill("#key", key)
        page.click("#signin-form button")
        page.wait_for_selector("body[data-view=batches]")
        assert page.inner_text("#who") == tenant
        assert page.evaluate("document.cookie") == "", "the key's cookie is HttpOnly"
        assert key not in page.content() and key not in page.url
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0

        drop_csv(page, "broken.csv", BAD_CSV)
        page.wait_for_selector("#intake-errors:not([hidden]) tbody tr")
        rows = page.inner_text("#intake-errors tbody")
        assert "line 3" in rows and "title or a prompt" in rows, rows
        keep(page, "intake-errors-desktop.png")

        drop_csv(page, "spring-catalogue.csv", product_csv(api, key))
        page.wait_for_selector("body[data-view=batch] #grid li[data-ref='mug-green']")
        assert page.inner_text("#batch-name") == "spring-catalogue"
        keep(page, "batch-running-desktop.png")
        page.wait_for_function(
            f"{list(FINISHED)}.includes(document.body.dataset.batchStatus)", timeout=180_000
        )
        page.wait_for_selector("#grid li[data-state=succeeded] img")
        assert page.get_attribute("#grid li[data-ref='ask-1']", "data-state") == "failed"
        assert page.inner_text("#grid li[data-ref='ask-1'] .advice")
        assert "2 ready" in page.inner_text("#batch-counts")
        page.wait_for_function(
            "[...document.querySelectorAll('#grid img')]"
            ".every((img) => img.complete && img.naturalWidth > 0)"
        )
        keep(page, "batch-finished-desktop.png")

        page.click("#grid li[data-ref='mug-green'] button.play")
        video = "#grid li[data-ref='mug-green'] video"
        page.wait_for_function(f'document.querySelector("{video}").readyState >= 3', timeout=30_000)
        assert page.evaluate(f'document.querySelector("{video}").duration') > 1
        keep(page, "video-playing-desktop.png")

        page.click("#grid li[data-ref='ask-1'] button[data-action=retry]")
        page.wait_for_selector("#grid li[data-ref='ask-1']:not([data-state=failed])")
        page.wait_for_selector("#toast:text('retrying')")
        page.wait_for_selector("#toast", state="hidden")

        page.set_viewport_size(PHONE)
        page.wait_for_timeout(300)  # a layout pass at the new width
        keep(page, "batch-phone.png")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width} px)"
        page.click("a[data-view=batches]")
        page.wait_for_selector("#batch-list li[data-batch]")
        keep(page, "batches-phone.png")
        page.click("a[data-view=schedules]")
        page.wait_for_selector("#schedule-table tr[data-schedule]")
        assert "nightly catalogue" in page.inner_text("#schedule-table")
        keep(page, "schedules-phone.png")
        page.set_viewport_size(DESKTOP)
        page.click("a[data-view=batches]")
        page.wait_for_selector("#batch-list li[data-batch]")
        keep(page, "batches-desktop.png")

        page.click("#sign-out")
        page.wait_for_selector("#signin-form")
        status = page.evaluate("fetch('/v1/batches').then((answer) => answer.status)")
        assert status == 401, "signed out, the cookie no longer opens the API"
        assert problems == [], problems
        context.close()
