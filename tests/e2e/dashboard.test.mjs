// The operator dashboard (GET /governor/v1/dashboard, a static file in
// public/ compiled into the Worker, src/assets.rs): served with its CSP, and in headless Chromium it shows the
// governor's real numbers for real traffic, as a client and as the operator. Its polling is checked under a fake clock:
// one request at a time, backoff on errors, nothing while the tab is hidden.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { generateBody, govCall, until, SIM_KEY, ROOT } from "../lib/harness.mjs";
import { setup } from "../lib/e2e.mjs";
import { launchBrowser, haveBrowser } from "../lib/browser.mjs";
import { headersFile } from "../../scripts/dashboard-csp.mjs";

const ADMIN_KEY = "dashboard-admin-key-0123456789";
const DASH = "\u2014";
const OUT = join(ROOT, "test-output");
const PAGE = "/governor/v1/dashboard";

let gov, browser;
const traffic = {};

before(async () => {
  // One generation at a time that lasts minutes: it stays in flight, the
  // next creates are refused and a queued job waits behind it.
  ({ gov } = await setup(
    { concurrency: 1, "pending-ms": 300, "processing-ms": 300_000 },
    {
      SYNC_PLAN: "hobbyist",
      GENERATE_PER_MINUTE: "4",
      LOCAL_MODE: "true",
      GOVERNOR_WEBHOOK_KEY: "dashboard-test-webhook-key",
      GOVERNOR_ADMIN_KEY: ADMIN_KEY,
    },
  ));
  if (haveBrowser()) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const clientStatus = async () => {
  const r = await govCall(gov, "/governor/v1/status");
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const admin = async (path) => {
  const r = await govCall(gov, `/governor/v1/admin${path}`, { key: null, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return r.json;
};

// What the page must show for a status document, by data-k (the page's own
// formatting: en-US grouping, a dash for anything absent).
const n = (v) => (typeof v === "number" ? v.toLocaleString("en-US") : DASH);
const total = (v) =>
  typeof v === "number" ? v : v && typeof v === "object" ? Object.values(v).reduce((t, x) => t + (total(x) ?? 0), 0) : undefined;
function expected(s) {
  const pol = (name) => s.policies.find((p) => p.name === name) ?? {};
  const e = {
    "policy.generate.remaining": n(pol("generate").remaining),
    "policy.generate.quota": n(pol("generate").quota),
    "policy.other.quota": n(pol("other").quota),
    "policy.concurrency.remaining": n(pol("concurrency").remaining),
    "concurrency.inUse": n(s.concurrency.inUse),
    "concurrency.limit": n(s.concurrency.limit),
    "batches.inUse": n(s.batches?.inUse),
    "batches.limit": n(s.batches?.limit),
    "inflight.count": n(s.concurrency.inFlight.length),
    "queue.depth": n(s.queue.depth),
    "queue.held": n(s.queue.held),
    "relay.pending": n(s.relay.pending),
    "relay.delivered": n(s.relay.delivered),
    "reconcile.lastDrift": n(s.reconcile.lastDrift),
    "webhooks.verification": s.webhooks?.verification ?? DASH,
    mode: s.mode ?? DASH,
    paused: s.paused === undefined ? DASH : s.paused ? "paused" : "no",
    "counters.refused": n(total(s.counters?.refused)),
    "counters.upstream429": n(total(s.counters?.upstream429)),
    "waits.held.count": n(s.waits?.held?.count),
  };
  for (const k of ["admitted", "refused", "held"]) {
    const a = s.series?.classes?.generate?.[k];
    e[`series.generate.${k}`] = Array.isArray(a) ? n(a.reduce((x, y) => x + y, 0)) : undefined;
  }
  for (const l of s.limits ?? []) e[`limit.${l.name}`] = n(l.value);
  return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined));
}

/** The page's text for each data-k (every element carrying it must agree). */
async function shown(page, keys) {
  return page.evaluate((keys) => {
    const out = {};
    for (const k of keys) {
      const t = [...document.querySelectorAll(`[data-k="${k}"]`)].map((e) => e.textContent.trim());
      out[k] = t.length === 0 ? "(absent)" : t.every((x) => x === t[0]) ? t[0] : `(disagree: ${t.join(" | ")})`;
    }
    return out;
  }, keys);
}

/**
 * Until the page shows what the governor's own status says (fetched afresh
 * each round, since budgets and reconciliation move), within `timeoutMs`.
 */
async function agrees(page, fetchStatus, timeoutMs = 20_000) {
  let last;
  try {
    return await until(
      "the dashboard to show the governor's numbers",
      async () => {
        const s = await fetchStatus();
        const want = expected(s);
        const got = await shown(page, Object.keys(want));
        last = { want, got };
        return Object.keys(want).every((k) => want[k] === got[k]) ? { status: s, want } : null;
      },
      timeoutMs,
    );
  } catch (e) {
    assert.deepEqual(last?.got, last?.want, e.message);
    throw e;
  }
}

/** A page that records its API calls: count, concurrency, URLs. */
async function newPage() {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.addInitScript(() => {
    const real = window.fetch.bind(window);
    window.__api = { calls: 0, inflight: 0, maxInflight: 0, urls: [] };
    window.fetch = async (...args) => {
      const a = window.__api;
      a.calls += 1;
      a.inflight += 1;
      a.maxInflight = Math.max(a.maxInflight, a.inflight);
      a.urls.push(String(args[0]));
      try {
        return await real(...args);
      } finally {
        a.inflight -= 1;
      }
    };
  });
  return { page, problems };
}

async function enterKey(page, key) {
  await page.fill("#keyInput", key);
  await page.click("#connectBtn");
}

test("the page is a static file with a hash-based CSP, and _headers matches the page", { skip: !haveBrowser() && "no Chromium" }, async () => {
  const r = await fetch(gov.url + PAGE);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/html/);
  const csp = r.headers.get("content-security-policy");
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[^']+'/);
  assert.match(csp, /connect-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  assert.equal(r.headers.get("referrer-policy"), "no-referrer");
  const html = await r.text();
  assert.equal(html, readFileSync(join(ROOT, "public", "governor", "v1", "dashboard.html"), "utf8"));
  assert.doesNotMatch(html, /<(?:script|link|img)[^>]+(?:src|href)="(?!data:)/i, "nothing is loaded from elsewhere");
  assert.equal(readFileSync(join(ROOT, "public", "_headers"), "utf8"), headersFile(), "public/_headers is stale: node scripts/dashboard-csp.mjs");
  // The Worker's routes are unaffected by the asset directory.
  assert.equal((await govCall(gov, "/governor/v1/health", { key: null })).status, 200);
  const nf = await govCall(gov, "/governor/v1/dashboard/nothing", { key: null });
  assert.equal(nf.status, 404);
  assert.equal(nf.json?.errorCode ?? nf.json?.error?.code, "not_found");
});

test("client key: the dashboard shows the account's real budget, in-flight generation, queue and refusals", { skip: !haveBrowser() && "no Chromium" }, async () => {
  // Real traffic, bounded: 1 create admitted (holds the only permit), 2
  // refused, 3 reads, 1 queued job behind the permit, 1 held then refused.
  const first = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.equal(first.status, 201, first.text);
  traffic.generation = first.json.id;
  for (let i = 0; i < 2; i++) assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 429);
  for (let i = 0; i < 3; i++) assert.equal((await govCall(gov, `/v2/generate/${traffic.generation}`)).status, 200);
  const queued = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "respond-async" } });
  assert.equal(queued.status, 202, queued.text);
  traffic.ticket = queued.json.id;
  const held = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "wait=1" } });
  assert.equal(held.status, 429, held.text);

  const { page, problems } = await newPage();
  await page.goto(gov.url + PAGE);
  await enterKey(page, SIM_KEY);
  await page.waitForFunction(() => document.querySelector("#modeBadge")?.textContent === "client key", null, { timeout: 15_000 });
  const { status, want } = await agrees(page, clientStatus);

  // The numbers are the traffic's, not just equal to some status.
  assert.equal(want["policy.generate.remaining"], "3"); // 4 - 1 admitted (refusals and the queued job spend nothing yet)
  assert.equal(want["inflight.count"], "1");
  assert.equal(want["concurrency.inUse"], "1");
  assert.equal(want["queue.depth"], "1");
  // This build's status view has every operations field: the page shows each, never a dash.
  for (const field of ["mode", "limits", "waits", "series", "counters"]) {
    assert.notEqual(status[field], undefined, `${field} is in the status view`);
  }
  // The two plain refusals (the held request that timed out counts as held).
  assert.ok(total(status.counters.refused) >= 2, JSON.stringify(status.counters));
  assert.equal(status.counters.admitted?.generate, 1, JSON.stringify(status.counters));
  assert.equal(want["counters.refused"], String(total(status.counters.refused)));
  assert.notEqual(want["counters.refused"], DASH);
  assert.equal(want["series.generate.admitted"], "1");
  assert.ok(Number(want["series.generate.refused"]) >= 2, JSON.stringify(status.series.classes.generate.refused.slice(-3)));
  const rowText = await page.textContent("#inflightBody");
  assert.ok(rowText.includes(traffic.generation), rowText);
  assert.match(rowText, /lipsync-2/);
  assert.match(await page.textContent("#queueBody"), /1 job\(s\) queued/);
  assert.match(await page.textContent("#conn"), /^live/);

  // The key lives in sessionStorage only: not in the URL, not in any request URL.
  assert.ok(!page.url().includes(SIM_KEY));
  assert.equal(await page.evaluate(() => sessionStorage.getItem("sync-governor.dashboard.key")), SIM_KEY);
  const api = await page.evaluate(() => window.__api);
  assert.ok(api.calls >= 2);
  assert.equal(api.maxInflight, 1, "one request at a time");
  assert.ok(api.urls.every((u) => !u.includes(SIM_KEY) && u.startsWith("/governor/v1/")), api.urls.join(" "));
  // A reload keeps the key (same tab) and reconnects.
  await page.reload();
  await page.waitForFunction(() => /^live/.test(document.querySelector("#conn")?.textContent ?? ""), null, { timeout: 15_000 });
  assert.deepEqual(problems, []);

  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, "dashboard-client.png"), fullPage: true });
  await page.close();
});

test("admin key: every account listed, the selected one shown with its queue", { skip: !haveBrowser() && "no Chromium" }, async () => {
  // The admin API is part of this build: a 404 here is a failure, not a skip.
  const probe = await govCall(gov, "/governor/v1/admin/accounts", { key: null, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(probe.status, 200, `GET /governor/v1/admin/accounts with the admin key: ${probe.status}`);
  assert.ok(traffic.ticket, "runs after the client test's traffic");
  const { accounts } = await admin("/accounts");
  assert.ok(accounts.length >= 1, JSON.stringify(accounts));
  const { page, problems } = await newPage();
  await page.goto(gov.url + PAGE);
  await enterKey(page, ADMIN_KEY);
  await page.waitForFunction(() => document.querySelector("#modeBadge")?.textContent.startsWith("operator"), null, { timeout: 15_000 });
  await page.waitForFunction(
    (names) => names.every((a) => [...document.querySelectorAll('[data-k="accounts.name"]')].some((e) => e.textContent === a)),
    accounts.map((a) => a.account),
    { timeout: 15_000 },
  );
  // The account with the traffic: the one whose status holds the permit.
  let mine;
  for (const a of accounts) {
    const s = await admin(`/accounts/${encodeURIComponent(a.account)}`);
    if (s.concurrency.inUse === 1 && s.queue.depth === 1) mine = a.account;
  }
  assert.ok(mine, "an account with the traffic's permit and queued job");
  await page.click(`[data-k="accounts.name"]:text-is("${mine}")`);
  await page.waitForFunction((a) => document.querySelector('[data-k="account"]')?.textContent === a, mine, { timeout: 15_000 });
  await agrees(page, () => admin(`/accounts/${encodeURIComponent(mine)}`));
  const usage = accounts.find((a) => a.account === mine).usage;
  if (usage) {
    const cells = await page.$$eval("#accountsBody tr.sel td", (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[0], mine);
    assert.match(cells[4], new RegExp(`^permits ${usage.permitsInUse}/${usage.permitsLimit} · queue ${usage.queueDepth} · admitted \\d+ · refused \\d+`));
  }

  const { jobs } = await admin(`/accounts/${encodeURIComponent(mine)}/queue`);
  assert.ok(jobs.some((j) => j.ticket === traffic.ticket), JSON.stringify(jobs));
  await page.waitForFunction((tk) => document.querySelector("#queueBody")?.textContent.includes(tk), traffic.ticket, { timeout: 15_000 });
  const queueRow = await page.textContent("#queueBody");
  const job = jobs.find((j) => j.ticket === traffic.ticket);
  assert.ok(queueRow.includes(String(job.position)), queueRow);
  assert.match(queueRow, /QUEUED/);
  const api = await page.evaluate(() => window.__api);
  assert.equal(api.maxInflight, 1, "one request at a time");
  assert.ok(api.urls.every((u) => !u.includes(ADMIN_KEY)));
  assert.deepEqual(problems, []);
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, "dashboard.png"), fullPage: true });
  await page.close();
});

// A status document with every field docs/operations.md promises (the page
// must render all of them), hostile strings included (text, never markup).
function fullStatus() {
  const steps = (f) => Array.from({ length: 90 }, (_, i) => f(i));
  return {
    account: "a-studio",
    mode: "shadow",
    paused: { since: "2026-01-01T00:00:00Z", retryAfterSeconds: 30, reason: "<b>maintenance</b>" },
    policies: [
      { name: "generate", quota: 60, windowS: 60, remaining: 12, resetMs: 4000 },
      { name: "other", quota: 600, windowS: 60, remaining: 600, resetMs: 0 },
      { name: "concurrency", quota: 6, windowS: null, remaining: 0, resetMs: 9000 },
    ],
    concurrency: {
      limit: 6, inUse: 2, free: 0, expectedDurationMs: 60000,
      inFlight: [
        { generation: "gen-1", adopted: false, ageMs: 30000, model: "<img src=x onerror=window.__xss=1>", expectedEndInMs: 30000 },
        { generation: null, adopted: false, ageMs: 100, model: "lipsync-2", expectedEndInMs: -5000 },
      ],
    },
    backoff: [{ class: "generate", pausedForMs: 2000, strikes: 1 }],
    reconcile: { runs: 7, nextInMs: 15000, lastDrift: 1 },
    relay: { pending: 3, delivered: 40, abandoned: 1, dropped: 0, duplicates: 2 },
    queue: { depth: 5, held: 2 },
    counters: { admitted: { generate: 48, other: 200 }, refused: { rate: 5, concurrency: 9 }, held: 4, queued: 5, shed: 0, wouldRefuse: { rate: 2 }, upstream: { 200: 240, 429: 1 }, upstream429: 1 },
    waits: { held: { count: 4, p50Ms: 800, p90Ms: 2000, p99Ms: 2500 }, queue: { count: 5, p50Ms: 61000, p90Ms: 120000, p99Ms: 130000 } },
    series: {
      stepMs: 10000,
      endsAt: Date.now(),
      classes: {
        generate: { admitted: steps((i) => (i > 80 ? 4 : 0)), refused: steps((i) => (i === 89 ? 14 : 0)), held: steps((i) => (i === 88 ? 4 : 0)) },
        other: { admitted: steps(() => 2), refused: steps(() => 0), held: steps(() => 0) },
      },
    },
    limits: [
      { name: "generate.perMinute", value: 60, source: "var" },
      { name: "concurrency", value: 6, source: "override" },
    ],
    storage: { schemaVersion: 2, idempotency: { count: 1, maxCount: 100000, bytes: 10, maxBytes: 67108864 } },
    webhooks: { verification: "on" },
  };
}

test("polling: one request at a time, backoff on errors, nothing while hidden; every documented field renders", { skip: !haveBrowser() && "no Chromium" }, async () => {
  const { page, problems } = await newPage();
  const seen = [];
  let mode = "fail";
  let release;
  await page.route(/\/governor\/v1\/(status|admin\/)/, async (route) => {
    const url = new URL(route.request().url());
    seen.push(url.pathname);
    if (url.pathname.startsWith("/governor/v1/admin/")) {
      return route.fulfill({ status: 404, contentType: "application/json", body: '{"statusCode":404,"errorCode":"not_found","message":"no such route","error":"Not Found"}' });
    }
    if (mode === "fail") return route.fulfill({ status: 503, contentType: "application/json", body: '{"statusCode":503,"errorCode":"overloaded","message":"busy","error":"Service Unavailable"}' });
    if (mode === "hold") await new Promise((r) => (release = r));
    return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(fullStatus()) });
  });
  await page.clock.install();
  await page.goto(gov.url + PAGE);
  await page.clock.pauseAt(Date.now() + 1_000);
  const calls = () => page.evaluate(() => window.__api.calls);
  const settled = () => page.waitForFunction(() => window.__api.inflight === 0, null, { timeout: 10_000 });

  // First try: admin probe (404 → client mode), then status: 503.
  await enterKey(page, "client-key-1");
  await page.waitForFunction(() => window.__api.calls === 2 && window.__api.inflight === 0, null, { timeout: 10_000 });
  await page.waitForFunction(() => document.querySelector("#conn").dataset.errors === "1", null, { timeout: 10_000 });
  assert.match(await page.textContent("#conn"), /error: 503 overloaded busy; retrying in/);
  // errors=1: the next try comes 3.2–4 s later, not at 2 s.
  await page.clock.runFor(3_100);
  assert.equal(await calls(), 2);
  await page.clock.runFor(1_000);
  assert.equal(await calls(), 3);
  await settled();
  // errors=2: 6.4–8 s.
  await page.clock.runFor(6_300);
  assert.equal(await calls(), 3);
  await page.clock.runFor(1_800);
  assert.equal(await calls(), 4);
  await settled();

  // Recovery, then a slow answer: nothing else goes out while it is pending.
  mode = "hold";
  await page.clock.runFor(16_100);
  await until("the held request", () => release, 10_000);
  assert.equal(await calls(), 5);
  await page.clock.runFor(5_000); // under the page's 10 s request timeout
  assert.equal(await calls(), 5, "no second request while one is in flight");
  mode = "ok";
  release();
  await page.waitForFunction(() => /^live/.test(document.querySelector("#conn").textContent), null, { timeout: 10_000 });
  await page.clock.runFor(2_100);
  assert.equal(await calls(), 6, "back to every 2 s");
  await settled();

  // Hidden: no polling at all; visible again: at once.
  await page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await page.clock.runFor(30_000);
  assert.equal(await calls(), 6, "no requests while hidden");
  assert.match(await page.textContent("#conn"), /hidden/);
  await page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await page.waitForFunction(() => window.__api.calls === 7, null, { timeout: 10_000 });
  await settled();
  assert.equal(await page.evaluate(() => window.__api.maxInflight), 1);

  // Every documented field, rendered (hostile strings as text).
  const s = fullStatus();
  const want = expected(s);
  assert.deepEqual(await shown(page, Object.keys(want)), want);
  const text = (sel) => page.textContent(sel);
  assert.match(await text('[data-k="paused.detail"]'), /<b>maintenance<\/b>/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.match(await text("#inflightBody"), /<img src=x/);
  assert.match(await text("#inflightBody"), /in 30 s/);
  assert.match(await text("#inflightBody"), /overdue 5.0 s/);
  assert.equal(await text('[data-k="series.generate.admitted"]'), "36");
  assert.equal(await text('[data-k="series.generate.refused"]'), "14");
  assert.equal(await text('[data-k="counters.refused.detail"]'), "14 (rate 5 \u00b7 concurrency 9)");
  assert.equal(await text('[data-k="limit.concurrency.source"]'), "override");
  assert.equal(await text('[data-k="waits.queue.p50Ms"]'), "1 m 01 s");
  assert.equal(await page.locator('.budget[data-class="generate"] svg rect.s-refused').count(), 1);
  assert.equal(await page.locator('.budget[data-class="other"] svg rect.s-admitted').count(), 90);
  assert.ok(seen.every((p) => p === "/governor/v1/status" || p === "/governor/v1/admin/accounts"), seen.join(" "));
  assert.deepEqual(problems, []);
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, "dashboard-every-field.png"), fullPage: true });

  // Forget: the key leaves sessionStorage and polling stops.
  await page.click("#forgetBtn");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("sync-governor.dashboard.key")), null);
  const before = await calls();
  await page.clock.runFor(10_000);
  assert.equal(await calls(), before);
  await page.close();
});

test("admin mode against a stand-in admin API: accounts, selection, queue positions and ETAs, the key as a bearer", { skip: !haveBrowser() && "no Chromium" }, async () => {
  const { page, problems } = await newPage();
  const auth = new Set();
  const one = fullStatus();
  const two = { ...fullStatus(), mode: "enforce", paused: null, queue: { depth: 0, held: 0 }, concurrency: { limit: 3, inUse: 0, free: 3, inFlight: [] } };
  const soon = new Date(Date.now() + 90_000).toISOString();
  await page.route(/\/governor\/v1\/(status|admin\/)/, (route) => {
    const req = route.request();
    auth.add(`${req.headers().authorization ?? ""}|${req.headers()["x-api-key"] ?? ""}`);
    const path = new URL(req.url()).pathname.replace("/governor/v1/admin", "");
    const json = (body) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
    if (path === "/accounts") {
      return json({ accounts: [
        { account: "a-one", mode: "enforce", firstSeen: "2026-01-01T00:00:00Z", lastSeen: "2026-01-02T00:00:00Z", usage: { admitted: 248 } },
        { account: "k-2f1e", mode: "enforce", firstSeen: "2026-01-01T00:00:00Z", lastSeen: "2026-01-01T01:00:00Z", usage: {} },
      ] });
    }
    if (path === "/accounts/a-one") return json(one);
    if (path === "/accounts/k-2f1e") return json(two);
    if (path === "/accounts/a-one/queue") {
      return json({ depth: 5, jobs: [
        { ticket: "tk_first", client: "c-web", priority: 5, ageMs: 61_000, position: 0, status: "QUEUED", estimatedStartAt: soon },
        { ticket: "tk_second", client: "c-app", priority: 0, ageMs: 1_000, position: 1, status: "QUEUED", estimatedStartAt: null },
      ] });
    }
    if (path === "/accounts/k-2f1e/queue") return json({ depth: 0, jobs: [] });
    return route.fulfill({ status: 404, contentType: "application/json", body: '{"statusCode":404,"errorCode":"not_found","message":"no","error":"Not Found"}' });
  });
  await page.goto(gov.url + PAGE);
  await enterKey(page, ADMIN_KEY);
  await page.waitForFunction(() => document.querySelector("#queueBody")?.textContent.includes("tk_first"), null, { timeout: 15_000 });
  assert.match(await page.textContent("#modeBadge"), /^operator/);
  assert.equal(await page.textContent('[data-k="account"]'), "a-one");
  assert.deepEqual(await page.$$eval('[data-k="accounts.name"]', (es) => es.map((e) => e.textContent)), ["a-one", "k-2f1e"]);
  const rows = await page.$$eval("#queueBody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(rows[0].slice(0, 6), ["0", "tk_first", "c-web", "5", "1 m 01 s", "QUEUED"]);
  assert.match(rows[0][6], /^in (1 m [23]\d s|\d\d s)$/);
  assert.deepEqual(rows[1].slice(0, 7), ["1", "tk_second", "c-app", "0", "1.0 s", "QUEUED", DASH]);
  assert.equal(rows[2][0], "+3 more");
  assert.equal(await page.textContent('[data-k="accounts.name"] >> xpath=../td[5]'), "admitted 248");
  // Pick the other account.
  await page.click('[data-k="accounts.name"]:text-is("k-2f1e")');
  await page.waitForFunction(() => document.querySelector('[data-k="account"]')?.textContent === "k-2f1e" && document.querySelector('[data-k="mode"]')?.textContent === "enforce", null, { timeout: 15_000 });
  assert.equal(await page.textContent('[data-k="paused"]'), "no");
  assert.equal(await page.textContent('[data-k="inflight.count"]'), "0");
  assert.match(await page.textContent("#queueBody"), /empty/);
  // The admin key went as a bearer only, never as x-api-key.
  assert.deepEqual([...auth], [`Bearer ${ADMIN_KEY}|`]);
  assert.equal(await page.evaluate(() => window.__api.maxInflight), 1);
  assert.deepEqual(problems, []);
  await page.close();
});
