// Every example in examples/ is run against the simulator behind the
// governor, and judged by what happened: the generations exist at the
// simulator and ended, the statuses the example printed are the ones the
// governor and Sync went through, nothing was refused upstream.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { ROOT, SIM_KEY, startSim, startGovernor, generateBody, govCall, until } from "../lib/harness.mjs";
import { haveBrowser, launchBrowser } from "../lib/browser.mjs";

const EXAMPLES = join(ROOT, "examples");
const PYTHON = join(ROOT, ".venv", "bin", "python");
const OUTPUT = join(ROOT, "test-output");

/** Run a program to its end (bounded); { code, stdout, stderr }. */
function run(cmd, args, env, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} ran over ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Start a simulator and a governor for one test; returns { sim, gov, stop }. */
async function stack(simArgs, vars) {
  const sim = await startSim(simArgs);
  let gov;
  try {
    gov = await startGovernor({ SYNC_API_BASE: sim.url, ...vars });
  } catch (e) {
    await sim.stop();
    throw e;
  }
  return {
    sim,
    gov,
    async stop() {
      await gov.stop();
      await sim.stop();
    },
  };
}

/** The simulator's own view of a generation (null when it does not know it). */
async function simGeneration(sim, id) {
  const r = await fetch(`${sim.url}/_sim/generations/${encodeURIComponent(id)}`);
  if (r.status !== 200) return null;
  return (await r.json()).generation;
}

/** Nothing was refused by the simulator: the governor kept the account in its limits. */
async function assertNoUpstreamRefusals(sim) {
  const t = (await sim.stats()).totals;
  assert.equal(t.rate_limited.generate + t.rate_limited.other + t.concurrency_limited, 0, JSON.stringify(t));
}

/** Occupy the account's only permit with a generation that runs `ms` at the simulator. */
async function occupy(gov, ms, key = SIM_KEY) {
  const r = await govCall(gov, "/v2/generate", { method: "POST", key, body: generateBody({ options: { sim_duration_ms: ms } }) });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

// ---------------------------------------------------------------------------
test("examples/curl.sh: a create with RateLimit headers, then a respond-async job followed from its ticket to COMPLETED", async () => {
  const { sim, gov, stop } = await stack(
    { concurrency: 1, "pending-ms": 100, "processing-ms": 800 },
    { MAX_CONCURRENT_GENERATIONS: 1, ACCOUNT_LOCATION_HINT: "enam" },
  );
  try {
    const r = await run("bash", [join(EXAMPLES, "curl.sh")], { GOVERNOR_URL: gov.url, SYNC_API_KEY: SIM_KEY, POLL_SECONDS: "30" });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    // The plain create: 201 with both RateLimit fields.
    assert.match(out, /== POST \/v2\/generate\n {2}HTTP 201\n {2}RateLimit-Policy: .*"generate";q=60.*"concurrency";q=1/);
    assert.match(out, /RateLimit: {8}"generate";r=59/);
    const first = out.match(/generation ([0-9a-f-]{36}): PENDING/)?.[1];
    assert.ok(first, out);
    // The account's one permit is taken: respond-async is queued (202 + ticket).
    assert.match(out, /respond-async\n {2}HTTP 202/);
    const ticket = out.match(/queued: ticket (tk_[0-9a-f]{32}) \(Location: \/governor\/v1\/queue\/tk_/)?.[1];
    assert.ok(ticket, out);
    // Followed through the queue to the generation's end.
    const lines = out.split("\n");
    const from = lines.indexOf(`== GET /governor/v1/queue/${ticket} until the generation ends`);
    const seen = lines.slice(from + 1, lines.indexOf(`ticket ${ticket}: COMPLETED`)).map((l) => l.trim().split(" ")[0]);
    assert.equal(seen[0], "QUEUED", out);
    assert.equal(seen.at(-1), "COMPLETED", out);
    assert.ok(out.includes(`generation ${first}: COMPLETED`), out);

    // The governor's and the simulator's view agree.
    const view = await govCall(gov, `/governor/v1/queue/${ticket}`);
    assert.equal(view.json.status, "COMPLETED");
    const second = view.json.generationId;
    assert.notEqual(second, first);
    assert.ok(out.includes(`COMPLETED ${second}`), out);
    for (const id of [first, second]) assert.equal((await simGeneration(sim, id))?.status, "COMPLETED", id);
    assert.equal((await sim.stats()).totals.requests.generate, 2);
    await assertNoUpstreamRefusals(sim);
  } finally {
    await stop();
  }
});

// ---------------------------------------------------------------------------
test("examples/typescript-sdk.mjs: the SDK's create is held (Prefer: wait=30) while the permit is taken, then polled to COMPLETED", async () => {
  const { sim, gov, stop } = await stack({ concurrency: 1, "pending-ms": 100, "processing-ms": 400 }, { MAX_CONCURRENT_GENERATIONS: 1 });
  try {
    const busy = await occupy(gov, 1_500);
    const started = Date.now();
    const r = await run("node", [join(EXAMPLES, "typescript-sdk.mjs")], { GOVERNOR_URL: gov.url, SYNC_API_KEY: SIM_KEY, POLL_SECONDS: "30" });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const id = r.stdout.match(/^created ([0-9a-f-]{36}): (PENDING|PROCESSING)$/m)?.[1];
    assert.ok(id, r.stdout);
    assert.match(r.stdout, new RegExp(`^generation ${id}: COMPLETED https?://`, "m"));
    // Held, not refused: it could only be created once the first generation ended.
    const created = await simGeneration(sim, id);
    const blocker = await simGeneration(sim, busy);
    assert.equal(created?.status, "COMPLETED");
    assert.equal(blocker?.status, "COMPLETED");
    assert.ok(Date.now() - started >= 1_000, "the create waited for the permit");
    const creates = (await sim.requests()).filter((e) => e.method === "POST" && e.path === "/v2/generate");
    assert.equal(creates.length, 2, "one create each, no retries");
    assert.equal(creates[1].headers["x-fern-sdk-name"], "@sync.so/sdk");
    await assertNoUpstreamRefusals(sim);
  } finally {
    await stop();
  }
});

// ---------------------------------------------------------------------------
const pythonReady = existsSync(PYTHON);
test(
  "examples/python-sdk.py: the Python SDK (syncsdk) pointed at the governor creates and polls a generation",
  { skip: pythonReady ? false : "no .venv/bin/python: run scripts/setup.sh (needs python3)" },
  async () => {
    const { sim, gov, stop } = await stack({ concurrency: 1, "pending-ms": 100, "processing-ms": 400 }, { MAX_CONCURRENT_GENERATIONS: 1 });
    try {
      const busy = await occupy(gov, 1_000);
      const r = await run(PYTHON, [join(EXAMPLES, "python-sdk.py")], { GOVERNOR_URL: gov.url, SYNC_API_KEY: SIM_KEY, POLL_SECONDS: "30" });
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const id = r.stdout.match(/^created ([0-9a-f-]{36}): (PENDING|PROCESSING)$/m)?.[1];
      assert.ok(id, r.stdout);
      assert.match(r.stdout, new RegExp(`^generation ${id}: COMPLETED https?://`, "m"));
      assert.equal((await simGeneration(sim, id))?.status, "COMPLETED");
      assert.equal((await simGeneration(sim, busy))?.status, "COMPLETED");
      const log = await sim.requests();
      const creates = log.filter((e) => e.method === "POST" && e.path === "/v2/generate");
      assert.equal(creates.length, 2, "one create each, no retries");
      assert.match(creates[1].headers["user-agent"] ?? "", /^syncsdk\//, "the Python SDK's own request");
      assert.ok(log.some((e) => e.method === "GET" && e.path === `/v2/generate/${id}` && e.status === 200), "polled through the governor");
      await assertNoUpstreamRefusals(sim);
    } finally {
      await stop();
    }
  },
);

// ---------------------------------------------------------------------------
test("placement: an invalid ACCOUNT_LOCATION_HINT is ignored (no hint), never an error", async () => {
  const { sim, gov, stop } = await stack({ concurrency: 1, "pending-ms": 50, "processing-ms": 50 }, { MAX_CONCURRENT_GENERATIONS: 1, ACCOUNT_LOCATION_HINT: "mars" });
  try {
    const r = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() });
    assert.equal(r.status, 201, r.text);
    assert.equal((await govCall(gov, "/governor/v1/status")).status, 200);
    assert.ok(await simGeneration(sim, r.json.id));
  } finally {
    await stop();
  }
});

// ---------------------------------------------------------------------------
/** Serve examples/browser.html at / on 127.0.0.1 (an origin of its own). */
async function servePage() {
  const html = readFileSync(join(EXAMPLES, "browser.html"));
  const server = http.createServer((req, res) => {
    if (new URL(req.url, "http://x").pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((ok) => server.close(ok)) };
}

test(
  "examples/browser.html: a managed client key, a held create (wait=30) and a queued job followed to COMPLETED, from a real browser",
  { skip: haveBrowser() ? false : "no Chromium: run scripts/setup.sh (apt-get install chromium) or set CHROMIUM_BIN" },
  async () => {
    const CLIENT_KEY = "ck-browser-example-0001";
    const page0 = await servePage();
    const { sim, gov, stop } = await stack(
      { concurrency: 1, "pending-ms": 100, "processing-ms": 1_500 },
      {
        GOVERNOR_CLIENT_KEYS: JSON.stringify({ [CLIENT_KEY]: "demo" }),
        SYNC_API_KEYS: JSON.stringify({ demo: SIM_KEY }),
        ALLOWED_ORIGINS: page0.origin,
        MAX_CONCURRENT_GENERATIONS: 1,
      },
    );
    const browser = await launchBrowser();
    const problems = [];
    try {
      const page = await browser.newPage();
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
      const q = new URLSearchParams({ governor: gov.url, key: CLIENT_KEY, poll: "200" });
      await page.goto(`${page0.origin}/?${q}`);
      assert.equal(await page.inputValue("#governor"), gov.url, "the governor URL comes from the query string");

      // 1. Prefer: wait=30 — admitted at once (the account is idle).
      await page.click("#create-wait");
      const genRow = page.locator('tr[data-kind="generation"]');
      await genRow.waitFor({ timeout: 15_000 });
      const first = await genRow.getAttribute("data-id");
      // 2. Prefer: respond-async while the one permit is taken — a ticket.
      await page.click("#create-async");
      const ticketRow = page.locator('tr[data-kind="ticket"]');
      await ticketRow.waitFor({ timeout: 15_000 });
      const ticket = await ticketRow.getAttribute("data-id");
      assert.match(ticket, /^tk_[0-9a-f]{32}$/);
      // Followed to the end through GET /governor/v1/queue/{ticket}.
      await page.locator('tr[data-kind="ticket"][data-final]').waitFor({ timeout: 30_000 });
      await page.locator('tr[data-kind="generation"][data-final]').waitFor({ timeout: 30_000 });
      assert.equal(await ticketRow.getAttribute("data-final"), "COMPLETED");
      assert.equal(await genRow.getAttribute("data-final"), "COMPLETED");
      assert.equal(await ticketRow.locator(".status").textContent(), "COMPLETED");
      const second = await ticketRow.locator(".generation").textContent();
      const log = await page.textContent("#log");
      assert.match(log, new RegExp(`ticket ${ticket}: QUEUED`), log);
      assert.match(log, new RegExp(`ticket ${ticket}: COMPLETED`), log);
      assert.match(await genRow.locator(".limits").textContent(), /"generate";r=\d+/, "RateLimit readable by the page (exposed by CORS)");
      mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: join(OUTPUT, "examples-browser.png"), fullPage: true });

      // The simulator has both generations, created with the account's Sync key;
      // the client key never reached it.
      for (const id of [first, second]) assert.equal((await simGeneration(sim, id))?.status, "COMPLETED", id);
      const creates = (await sim.requests()).filter((e) => e.method === "POST" && e.path === "/v2/generate");
      assert.equal(creates.length, 2);
      for (const e of creates) assert.equal(e.key_index, 0, "sent with the account's Sync key");
      assert.ok(!JSON.stringify(await sim.requests()).includes(CLIENT_KEY.slice(0, 8)), "the client key reached Sync");
      await assertNoUpstreamRefusals(sim);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await stop();
      await page0.close();
    }
  },
);
