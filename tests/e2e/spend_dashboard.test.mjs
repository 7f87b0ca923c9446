// Per-client usage, shares and spend on the dashboard, in headless Chromium
// against real workerd and the simulator: the Clients card shows each
// client's weight, permits, shares, queued and held work (status clients[])
// and what it spent today and this month (status costs.clients[]), and the
// account's budget with its source (var, or an operator's override).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { govCall, until, ROOT } from "../lib/harness.mjs";
import { setupSpend, costedCreate } from "../lib/spend.mjs";
import { launchBrowser, haveBrowser } from "../lib/browser.mjs";

const MOBILE = "ck-dash-mobile-0123456789";
const WEB = "ck-dash-web-0123456789abc";
const ADMIN_KEY = "spend-dashboard-admin-key-0123456789";
const PAGE = "/governor/v1/dashboard";
let gov, browser;

before(async () => {
  ({ gov } = await setupSpend(
    { mobile: MOBILE, web: WEB },
    {
      GOVERNOR_WEBHOOK_KEY: "spend-dashboard-webhook-key",
      GOVERNOR_ADMIN_KEY: ADMIN_KEY,
      BUDGET_USD_PER_DAY: "2",
      CLIENT_LIMITS: JSON.stringify({ acme: { mobile: { weight: 2, usdPerDay: 1 } } }),
    },
  ));
  if (haveBrowser()) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const create = (key, seconds, n) => costedCreate(gov, key, seconds, n);
const status = async () => (await govCall(gov, "/governor/v1/status", { key: MOBILE })).json;
const usd = (v) => `$${v.toFixed(2)}`;

async function shown(page, keys) {
  return page.evaluate((ks) => Object.fromEntries(ks.map((k) => [k, document.querySelector(`[data-k="${k}"]`)?.textContent ?? null])), keys);
}

test("dashboard: per-client usage, shares and spend, and the account's budget with its source", { skip: !haveBrowser() && "no Chromium" }, async () => {
  // mobile: 3 jobs of 5 s (0.20 each); web: 2 jobs of 7 s (0.28 each).
  for (let i = 0; i < 3; i++) assert.equal((await create(MOBILE, 5, i)).status, 201);
  for (let i = 0; i < 2; i++) assert.equal((await create(WEB, 7, 10 + i)).status, 201);
  const s = await until("every job settled", async () => {
    const st = await status();
    return st.costs.ledger.open === 0 && st.costs.account.reservedUsd === 0 && st;
  }, 30_000);
  const spend = (c) => s.costs.clients.find((x) => x.client === c);
  assert.equal(spend("mobile").dayMicroUsd, 600_000);
  assert.equal(spend("web").dayMicroUsd, 560_000);

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(gov.url + PAGE);
  await page.fill("#keyInput", MOBILE);
  await page.click("#connectBtn");
  const want = {
    "clients.mobile.weight": "2",
    // status lists a client's shares while it has limits or work; web has neither now.
    "clients.web.weight": s.clients.find((c) => c.client === "web") ? String(s.clients.find((c) => c.client === "web").weight) : "\u2014",
    "clients.mobile.inUse": "0",
    "clients.mobile.dayUsd": usd(spend("mobile").dayUsd),
    "clients.web.dayUsd": usd(spend("web").dayUsd),
    "clients.mobile.monthUsd": usd(spend("mobile").monthUsd),
    "clients.mobile.reservedUsd": "$0.00",
    "clients.mobile.usdPerDay": "$1.00",
    "clients.web.usdPerDay": "\u2014",
  };
  let got;
  try {
    await until("the Clients card shows the governor's numbers", async () => {
      got = await shown(page, Object.keys(want));
      return Object.keys(want).every((k) => got[k] === want[k]);
    }, 20_000);
  } catch (e) {
    assert.deepEqual(got, want, e.message);
  }
  assert.deepEqual([want["clients.mobile.dayUsd"], want["clients.web.dayUsd"]], ["$0.60", "$0.56"]);
  const account = await page.textContent('[data-k="spend.account"]');
  assert.match(account, /today \$1\.16/, account);
  assert.match(account, /of \$2\.00 \(var\)/, account);

  // An operator's override of the account's budget: the card names its source.
  const put = await govCall(gov, "/governor/v1/admin/accounts/a-acme/budget", {
    method: "PUT",
    key: null,
    body: { usdPerDay: 5 },
    headers: { "x-governor-admin-key": ADMIN_KEY },
  });
  assert.equal(put.status, 200, put.text);
  await until("the card shows the override", async () => /of \$5\.00 \(override\)/.test(await page.textContent('[data-k="spend.account"]')), 20_000);
  assert.deepEqual(problems, []);
  mkdirSync(join(ROOT, "test-output"), { recursive: true });
  await page.screenshot({ path: join(ROOT, "test-output", "dashboard-clients.png"), fullPage: true });
  await page.close();
});
