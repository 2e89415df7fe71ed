// nemo-batch's page: plain JavaScript, no build, no CDN. The API key lives in an HttpOnly
// cookie this script cannot read; every change it asks for carries X-Nemo-Batch-Page.
"use strict";

const PAGE_SIZE = 48;
const POLL_MS = 2000;
const FINAL = new Set(["succeeded", "failed", "canceled"]);
const WAITING = new Set(["retry_wait", "waiting_credits", "queued"]);
const BATCH_WORDS = {
  queued: "Waiting to start", running: "Running", paused: "Paused: waiting for credits",
  succeeded: "Finished", completed_with_failures: "Finished with failures",
  failed: "Failed", canceled: "Canceled",
};

const $ = (id) => document.getElementById(id);
const state = { view: null, batchId: null, cursors: [null], pageIndex: 0, timer: null,
  batchCursor: null, filter: "" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const headers = { "X-Nemo-Batch-Page": "1", ...(options.headers || {}) };
  const answer = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (answer.status === 204) return null;
  const body = await answer.json().catch(() => null);
  if (answer.status === 401 && !path.startsWith("/ui/session")) {
    showSignIn();
  }
  if (!answer.ok) throw new ApiError(answer.status, body);
  return body;
}

function toast(text) {
  const node = $("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, 4000);
}

function show(section) {
  for (const id of ["signin", "batches", "batch", "schedules"]) $(id).hidden = id !== section;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.view === (section === "batch" ? "batches" : section));
  }
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

function poll(run) {
  stopPolling();
  state.timer = setTimeout(async () => {
    try { await run(); } catch (error) { if (error.status !== 401) toast(error.message); }
  }, POLL_MS);
}

// --- sign in and out -------------------------------------------------------------------------

function showSignIn() {
  stopPolling();
  for (const id of ["nav", "who", "sign-out"]) $(id).hidden = true;
  show("signin");
  document.body.dataset.view = "signin";
  $("key").focus();
}

function signedIn(tenant) {
  $("who").textContent = tenant;
  for (const id of ["nav", "who", "sign-out"]) $(id).hidden = false;
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = $("key");
  const key = field.value;
  field.value = "";
  $("signin-error").textContent = "";
  try {
    const who = await api("/ui/session", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key }),
    });
    signedIn(who.tenant);
    route();
  } catch (error) {
    $("signin-error").textContent = error.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  await api("/ui/session", { method: "DELETE" });
  location.hash = "";
  showSignIn();
});

// --- batches ---------------------------------------------------------------------------------

function counted(counts) {
  const running = Object.entries(counts)
    .filter(([name]) => !FINAL.has(name) && name !== "queued")
    .reduce((sum, [, count]) => sum + count, 0);
  const parts = [`${counts.succeeded || 0} ready`];
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (running) parts.push(`${running} in progress`);
  if (counts.queued) parts.push(`${counts.queued} waiting`);
  if (counts.canceled) parts.push(`${counts.canceled} canceled`);
  return parts.join(" · ");
}

function progressBar(batch) {
  // One bar in three parts: ready (green), failed (red), canceled (grey); the rest is to do.
  const total = batch.item_count || 1;
  const part = (name, count) => {
    const span = el("span", { class: name });
    span.style.width = `${(100 * count) / total}%`;
    return span;
  };
  const percent = Math.round(batch.progress * 100);
  return el("div", { class: "progress", role: "progressbar", "aria-valuenow": percent,
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": `${percent}% finished` },
    part("ok", batch.counts.succeeded || 0), part("bad", batch.counts.failed || 0),
    part("off", batch.counts.canceled || 0));
}

function batchRow(batch) {
  return el("li", { "data-batch": batch.id },
    el("a", { href: `#/batches/${batch.id}` },
      el("span", {},
        el("span", { class: "name" }, batch.name), el("br"),
        el("span", { class: "status" },
          `${BATCH_WORDS[batch.status] || batch.status} · ${new Date(batch.created_at).toLocaleString()}`)),
      el("span", {}, progressBar(batch), el("span", { class: "counts" }, counted(batch.counts))),
      el("span", { class: "status" }, `${batch.item_count} products`)));
}

async function loadBatches(more = false) {
  const query = new URLSearchParams({ limit: 20 });
  if (more && state.batchCursor) query.set("cursor", state.batchCursor);
  const page = await api(`/v1/batches?${query}`);
  const list = $("batch-list");
  if (!more) list.replaceChildren();
  list.append(...page.items.map(batchRow));
  if (!list.children.length) list.append(el("li", { class: "status" }, "No batches yet: drop a CSV above."));
  state.batchCursor = page.next_cursor;
  $("more-batches").hidden = !page.next_cursor;
  document.body.dataset.view = "batches";
  if (page.items.some((batch) => !["succeeded", "completed_with_failures", "failed", "canceled"].includes(batch.status))) {
    poll(() => state.view === "batches" && loadBatches());
  }
}

$("more-batches").addEventListener("click", () => loadBatches(true));

// --- CSV by drag and drop ---------------------------------------------------------------------

async function submitCsv(file) {
  const status = $("drop-status");
  $("intake-errors").hidden = true;
  if (!file) return;
  status.textContent = `Sending ${file.name}...`;
  const name = file.name.replace(/\.csv$/i, "").slice(0, 200) || "batch";
  try {
    const batch = await api(`/v1/batches?${new URLSearchParams({ name })}`, {
      method: "POST", headers: { "Content-Type": "text/csv" }, body: await file.text(),
    });
    status.textContent = `${batch.item_count} products accepted as “${batch.name}”.`;
    location.hash = `#/batches/${batch.id}`;
  } catch (error) {
    status.textContent = "";
    showIntakeErrors(error);
  }
}

function showIntakeErrors(error) {
  $("intake-message").textContent = error.message;
  const details = (error.body && error.body.error && error.body.error.details) || [];
  $("intake-errors").querySelector("tbody").replaceChildren(
    ...details.map((detail) => el("tr", {}, el("td", {}, detail.loc || "the file"), el("td", {}, detail.message))));
  $("intake-errors").hidden = false;
}

const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  submitCsv(event.dataTransfer.files[0]);
});
$("csv-file").addEventListener("change", (event) => {
  submitCsv(event.target.files[0]);
  event.target.value = "";
});

// --- one batch: its grid of products -----------------------------------------------------------

function stateClass(product) {
  if (FINAL.has(product.state)) return product.state;
  return WAITING.has(product.state) ? "waiting" : "running";
}

function playIn(media, product) {
  const video = el("video", { src: product.video_url, controls: true, autoplay: true,
    playsinline: true, preload: "auto", poster: product.poster_url, "data-job": product.job_id });
  video.muted = true;
  media.replaceChildren(video);
  media.dataset.playing = "1";
}

async function jobAction(product, action) {
  try {
    await api(`/v1/jobs/${product.job_id}/${action}`, { method: "POST" });
    toast(action === "retry" ? `${product.ref || product.title}: retrying` : `${product.ref || product.title}: canceled`);
  } catch (error) {
    toast(error.message);
  }
  await loadBatch();
}

function productCard(product, playing) {
  const media = el("div", { class: "media" });
  if (playing && product.video_url) {
    playIn(media, product);
  } else if (product.poster_url) {
    media.append(el("img", { src: product.poster_url, alt: `Poster of ${product.title || product.ref || "the video"}`, loading: "lazy" }));
  } else {
    media.append(el("span", { class: "placeholder" }, product.state_text));
  }
  if (product.video_url && !(playing && product.video_url)) {
    media.append(el("button", { class: "play", type: "button", "aria-label": `Play ${product.ref || product.title || "the video"}`,
      onclick: () => playIn(media, product) }, "▶"));
  }
  const actions = el("div", { class: "card-actions" });
  if (product.state === "failed" || product.state === "canceled") {
    actions.append(el("button", { type: "button", class: "quiet", "data-action": "retry", onclick: () => jobAction(product, "retry") }, "Retry"));
  } else if (!FINAL.has(product.state)) {
    actions.append(el("button", { type: "button", class: "danger", "data-action": "cancel", onclick: () => jobAction(product, "cancel") }, "Cancel"));
  }
  return el("li", { "data-job": product.job_id, "data-state": product.state, "data-ref": product.ref || "" },
    media,
    el("div", { class: "info" },
      product.ref ? el("span", { class: "ref" }, product.ref) : null,
      el("span", { class: "title" }, product.title || "(no title)"),
      el("span", { class: `state ${stateClass(product)}` }, product.state_text,
        product.duration_s ? ` · ${product.duration_s.toFixed(1)} s` : ""),
      product.error_message ? el("span", { class: "problem" }, product.error_message) : null,
      product.advice ? el("span", { class: "advice" }, product.advice) : null,
      actions));
}

async function loadBatch() {
  const id = state.batchId;
  const cursor = state.cursors[state.pageIndex];
  const query = new URLSearchParams({ limit: PAGE_SIZE });
  if (cursor) query.set("cursor", cursor);
  if (state.filter) query.set("state", state.filter);
  const [batch, page] = await Promise.all([
    api(`/v1/batches/${id}`), api(`/v1/batches/${id}/products?${query}`),
  ]);
  if (state.batchId !== id) return;
  $("batch-name").textContent = batch.name;
  $("batch-status").textContent = `${BATCH_WORDS[batch.status] || batch.status} · ${batch.item_count} products`;
  const bar = progressBar(batch);
  bar.id = "batch-progress";
  $("batch-progress").replaceWith(bar);
  $("batch-counts").textContent = counted(batch.counts);
  $("batch-warning").textContent = batch.warning || "";
  $("batch-warning").hidden = !batch.warning;
  $("batch-manifest").href = `/v1/batches/${id}/manifest.csv`;
  $("batch-zip").href = `/v1/batches/${id}/videos.zip`;
  $("batch-zip").hidden = !batch.counts.succeeded;
  $("batch-retry").disabled = !batch.counts.failed;
  const finished = ["succeeded", "completed_with_failures", "failed", "canceled"].includes(batch.status);
  $("batch-cancel").disabled = finished;

  const grid = $("grid");
  const playing = new Set([...grid.querySelectorAll("[data-playing] video")].map((video) => video.dataset.job));
  const kept = new Map([...grid.querySelectorAll("li")].map((item) => [item.dataset.job, item]));
  grid.replaceChildren(...page.items.map((product) => {
    const old = kept.get(product.job_id);
    // A video playing stays as it is while the grid refreshes around it.
    if (old && playing.has(product.job_id)) return old;
    return productCard(product, false);
  }));
  const first = state.pageIndex * PAGE_SIZE + 1;
  $("page-info").textContent = page.items.length
    ? `${first}–${first + page.items.length - 1}${state.filter ? "" : ` of ${batch.item_count}`}`
    : "Nothing here.";
  state.cursors[state.pageIndex + 1] = page.next_cursor;
  $("prev-page").disabled = state.pageIndex === 0;
  $("next-page").disabled = !page.next_cursor;
  document.body.dataset.view = "batch";
  document.body.dataset.batchStatus = batch.status;
  if (!finished) poll(() => state.view === "batch" && state.batchId === id && loadBatch());
}

$("prev-page").addEventListener("click", () => { state.pageIndex -= 1; loadBatch(); });
$("next-page").addEventListener("click", () => { state.pageIndex += 1; loadBatch(); });
$("state-filter").addEventListener("change", (event) => {
  state.filter = event.target.value;
  state.cursors = [null];
  state.pageIndex = 0;
  loadBatch();
});

async function batchAction(action, question) {
  if (question && !confirm(question)) return;
  try {
    const done = await api(`/v1/batches/${state.batchId}/${action}`, { method: "POST" });
    toast(`${done.changed} products ${action === "cancel" ? "canceled" : "sent again"}`);
  } catch (error) {
    toast(error.message);
  }
  await loadBatch();
}

$("batch-retry").addEventListener("click", () => batchAction("retry-failed"));
$("batch-cancel").addEventListener("click", () => batchAction("cancel", "Cancel every product of this batch that is not finished?"));

// --- schedules -------------------------------------------------------------------------------

function when(text) {
  return text ? new Date(text).toLocaleString() : "—";
}

async function loadSchedules() {
  const page = await api("/v1/schedules?limit=100");
  const rows = page.items.map((schedule) => el("tr", { "data-schedule": schedule.id },
    el("td", {}, el("strong", {}, schedule.name), schedule.enabled ? null : el("span", { class: "status" }, " (paused)")),
    el("td", { "data-label": "When" }, el("code", {}, schedule.cron), ` ${schedule.timezone}`),
    el("td", { "data-label": "Next run" }, schedule.next_run_at ? when(schedule.next_run_at) : "paused"),
    el("td", { "data-label": "Last run" }, schedule.last_run_at ? when(schedule.last_run_at) : "not run yet",
      schedule.last_batch_id ? [" ", el("a", { href: `#/batches/${schedule.last_batch_id}` }, "its batch")] : null),
    el("td", { "data-label": "Outcome" }, schedule.last_outcome || "—",
      schedule.last_error ? el("div", { class: "problem" }, schedule.last_error) : null)));
  $("schedule-table").querySelector("tbody").replaceChildren(...rows);
  $("schedule-table").hidden = !rows.length;
  $("no-schedules").hidden = rows.length > 0;
  document.body.dataset.view = "schedules";
}

// --- routing ---------------------------------------------------------------------------------

async function route() {
  stopPolling();
  const [, view, id] = (location.hash || "#/batches").split("/");
  try {
    if (view === "batches" && id) {
      if (state.batchId !== id) {
        Object.assign(state, { batchId: id, cursors: [null], pageIndex: 0, filter: "" });
        $("state-filter").value = "";
        $("grid").replaceChildren();
      }
      state.view = "batch";
      show("batch");
      await loadBatch();
    } else if (view === "schedules") {
      state.view = "schedules";
      show("schedules");
      await loadSchedules();
    } else {
      state.view = "batches";
      state.batchId = null;
      show("batches");
      await loadBatches();
    }
  } catch (error) {
    if (error.status !== 401) toast(error.message);
  }
}

window.addEventListener("hashchange", route);

(async () => {
  try {
    const who = await api("/ui/session");
    signedIn(who.tenant);
    route();
  } catch {
    showSignIn();
  }
})();
