// Hardening (issue 10, findings 1, 2, 9 and 13): every spelling of a route
// that Sync's router would take as a create takes a permit; spellings that
// could be read as more than one route are refused and never forwarded; a
// client's credentials never reach Sync in managed mode; a body without
// Content-Length is cut at the cap; blank secrets are configuration errors.
// Every claim is checked against the simulator's own request log.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startSim, startGovernor, generateBody, call, rawRequest, until, SIM_KEY } from "../lib/harness.mjs";
import { setup as start } from "../lib/e2e.mjs";

const MAX_JSON = 2048;
const running = [];
after(async () => {
  for (const r of running.reverse()) await r.stop();
});

/** A simulator (Express-like lenient routing is its default) and a governor in front of it. */
const setup = (simArgs = {}, vars = {}) =>
  start({ concurrency: 5, "pending-ms": 50, "processing-ms": 60_000, ...simArgs }, { MAX_JSON_BODY_BYTES: MAX_JSON, ...vars });

/** Runs `fn` and returns the simulator log entries it caused. */
async function forwarded(sim, fn) {
  const before = (await sim.requests(1000)).length;
  const result = await fn();
  const all = await sim.requests(1000);
  assert.ok(all.length < 1000, "simulator log overflowed; the test cannot tell what was forwarded");
  return { result, entries: all.slice(before) };
}

function assertJsonError(r, status, errorCode, what = "") {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}: ${r.text}`);
  const ct = typeof r.headers.get === "function" ? r.headers.get("content-type") : r.headers["content-type"];
  assert.match(ct ?? "", /application\/json/, what);
  assert.ok(r.json, `${what}: body is JSON: ${r.text}`);
  assert.equal(r.json.statusCode, status, what);
  if (errorCode) assert.equal(r.json.errorCode, errorCode, `${what}: ${r.text}`);
}

const jsonHeaders = { "x-api-key": SIM_KEY, "content-type": "application/json" };

// ---------------------------------------------------------------------------
// Finding 1: create-path spellings.

test("POST /v2/Generate/ (a spelling Express routes to create) takes the permit: the next create is the governor's 429, not Sync's", async () => {
  const { sim, gov } = await setup({}, { MAX_CONCURRENT_GENERATIONS: 1, GOVERNOR_WEBHOOK_KEY: "hardening-webhook-key-0123456789" });
  const body = JSON.stringify(generateBody());
  const { result: first, entries } = await forwarded(sim, () =>
    rawRequest(gov.url, "/v2/Generate/", { method: "POST", headers: jsonHeaders, body }),
  );
  assert.equal(first.status, 201, first.text);
  assert.equal(entries.length, 1);
  assert.equal(entries[0].path, "/v2/Generate/", "forwarded as sent");
  assert.equal(entries[0].class, "generate", "Sync (lenient, as Express) counted it as a create");
  // The governor treated it as a create: Sync was told to call the governor back.
  const seen = (await call(sim.url, `/_sim/generations/${first.json.id}`)).json;
  assert.match(seen.generation.webhookUrl ?? "", /\/governor\/v1\/webhook\//, "webhookUrl was rewritten as for any create");
  const st = (await call(gov.url, "/governor/v1/status", { key: SIM_KEY })).json;
  assert.equal(st.concurrency.inUse, 1, JSON.stringify(st.concurrency));

  // With a cap of 1, every other spelling of create is refused by the governor.
  const { result: others, entries: more } = await forwarded(sim, async () => {
    const out = [];
    for (const p of ["/v2/generate", "/v2/generate/", "/v2/GENERATE", "/v2/gEnErAtE/"]) {
      out.push([p, await rawRequest(gov.url, p, { method: "POST", headers: jsonHeaders, body })]);
    }
    return out;
  });
  for (const [p, r] of others) assertJsonError(r, 429, "concurrency_limit_exceeded", p);
  assert.deepEqual(more, [], "a create beyond the cap reached Sync");
  const sync429 = (await sim.requests(1000)).filter((e) => e.status === 429);
  assert.deepEqual(sync429, [], "Sync answered 429");
});

test("ambiguous spellings (//, ;, %2F, %5C, %2E, needless escapes) are a 400 JSON error and never reach Sync", async () => {
  const { sim, gov } = await setup({}, { MAX_CONCURRENT_GENERATIONS: 3 });
  const body = JSON.stringify(generateBody());
  const cases = [
    ["POST", "/v2//generate"],
    ["POST", "/v2/generate//"],
    ["POST", "/v2/generate;x"],
    ["POST", "/v2/generate;"],
    ["POST", "/v2/generate%2F"],
    ["POST", "/v2/generate%2f"],
    ["POST", "/v2/generate%5C"],
    ["POST", "/v2/generate%5c"],
    ["POST", "/v2/generate%2E"],
    ["POST", "/v2/gener%61te"],
    ["POST", "/v2/generate%25"],
    ["POST", "/v2/assets//upload"],
    ["GET", "/v2/generations;x"],
    ["GET", "/v2//generations"],
    ["GET", "/v2/generate/abc%2F..%2Fx"],
    ["GET", "/v2//models"],
    ["GET", "/v2/models;x"],
  ];
  const { result, entries } = await forwarded(sim, async () => {
    const out = [];
    for (const [method, path] of cases) {
      out.push([
        `${method} ${path}`,
        await rawRequest(gov.url, path, { method, headers: jsonHeaders, body: method === "POST" ? body : undefined }),
      ]);
    }
    return out;
  });
  for (const [what, r] of result) assertJsonError(r, 400, "ambiguous_path", what);
  assert.deepEqual(entries.map((e) => `${e.method} ${e.path}`), [], "the simulator saw an ambiguous path");
  const st = (await call(gov.url, "/governor/v1/status", { key: SIM_KEY })).json;
  assert.equal(st.concurrency.inUse, 0);
});

// ---------------------------------------------------------------------------
// Finding 2: client credentials in managed mode.

test("managed mode: a client key sent as `authorization: bearer` (any case), Basic or a cookie never reaches Sync", async () => {
  const CK = "ck-hardening-client-key-7f3a9c";
  const { sim, gov } = await setup(
    {},
    { GOVERNOR_CLIENT_KEYS: JSON.stringify({ [CK]: "acme" }), SYNC_API_KEY: SIM_KEY, MAX_CONCURRENT_GENERATIONS: 3 },
  );
  const b64 = Buffer.from(`user:${CK}`).toString("base64");
  const cases = [
    ["/v2/models", { authorization: `bearer ${CK}` }, 200],
    ["/v2/models", { authorization: `BEARER ${CK}` }, 200],
    ["/v2/models", { authorization: `Basic ${b64}` }, 200],
    ["/v2/models", { cookie: `session=${CK}` }, 200],
    ["/v2/errors", { authorization: `bEaReR ${CK}`, cookie: `k=${CK}` }, 200],
    ["/v2/generations", { authorization: `bearer ${CK}` }, 200],
    ["/v2/generations", { authorization: `Bearer ${CK}`, cookie: `k=${CK}` }, 200],
    ["/v2/generations", { "x-api-key": CK, cookie: `k=${CK}` }, 200],
  ];
  const { result, entries } = await forwarded(sim, async () => {
    const out = [];
    for (const [path, headers, want] of cases) out.push([path, headers, want, await rawRequest(gov.url, path, { headers })]);
    return out;
  });
  for (const [path, headers, want, r] of result) assert.equal(r.status, want, `${path} ${JSON.stringify(headers)}: ${r.text}`);
  assert.equal(entries.length, cases.length, "every request was forwarded once");
  const log = JSON.stringify(entries);
  for (const secret of [CK, b64, CK.slice(0, 12)]) assert.ok(!log.includes(secret), `the simulator saw ${secret}`);
  for (const e of entries) {
    assert.equal(e.headers.authorization, undefined, `${e.path}: Authorization was forwarded`);
    assert.equal(e.headers.cookie, undefined, `${e.path}: Cookie was forwarded`);
    // Either no key (a public route called without one) or the account's own Sync key.
    if (e.headers["x-api-key"] !== undefined) assert.equal(e.key_index, 0, `${e.path}: a key other than Sync's`);
  }
  // A keyed route gets the account's Sync key.
  for (const e of entries.filter((e) => e.path === "/v2/generations")) assert.equal(e.key_index, 0);
});

// ---------------------------------------------------------------------------
// Finding 9: bodies without Content-Length.

/**
 * POST `total` bytes in chunks with no Content-Length and do not end the
 * request: resolves with the response the governor sends while the upload is
 * still open (a governor that buffers the whole body never answers).
 */
function openUpload(base, path, { headers = {}, total, chunk = 512, timeoutMs = 15_000 }) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request({ host: u.hostname, port: u.port, method: "POST", path, headers, agent: false });
    const timer = setTimeout(() => {
      settled = true;
      req.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms while the body was still open`));
    }, timeoutMs);
    req.on("response", (res) => {
      const parts = [];
      res.on("data", (c) => parts.push(c));
      res.on("end", () => {
        settled = true;
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString("utf8");
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", (e) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(e);
      }
    });
    req.flushHeaders();
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk, total - sent);
        sent += n;
        if (!req.write(Buffer.alloc(n, 0x20))) return req.once("drain", pump);
      }
      // Deliberately never req.end().
    };
    pump();
  });
}

test("a chunked generate body over MAX_JSON_BODY_BYTES is cut at the cap with 413 while still uploading, and Sync sees nothing", async () => {
  const { sim, gov } = await setup({}, { MAX_CONCURRENT_GENERATIONS: 3 });
  const { result: r, entries } = await forwarded(sim, () =>
    openUpload(gov.url, "/v2/generate", { headers: jsonHeaders, total: MAX_JSON * 4 }),
  );
  assertJsonError(r, 413, "payload_too_large", "open chunked upload");
  // A finished chunked body over the cap, and one just under it.
  const big = JSON.stringify(generateBody({ pad: "x".repeat(MAX_JSON) }));
  const over = await rawRequest(gov.url, "/v2/generate", { method: "POST", headers: jsonHeaders, body: [big.slice(0, 700), big.slice(700)] });
  assertJsonError(over, 413, "payload_too_large", "ended chunked upload");
  const after = await forwarded(sim, () => Promise.resolve());
  assert.deepEqual([...entries, ...after.entries].map((e) => `${e.method} ${e.path}`), [], "an oversized body reached Sync");

  const small = JSON.stringify(generateBody({ pad: "y".repeat(MAX_JSON - 400) }));
  assert.ok(Buffer.byteLength(small) <= MAX_JSON);
  const { result: ok, entries: sent } = await forwarded(sim, () =>
    rawRequest(gov.url, "/v2/generate", { method: "POST", headers: jsonHeaders, body: [small.slice(0, 100), small.slice(100, 900), small.slice(900)] }),
  );
  assert.equal(ok.status, 201, ok.text);
  assert.equal(sent.length, 1);
  // Forwarded whole (plus the governor's callback as webhookUrl).
  assert.ok(sent[0].body_len >= Buffer.byteLength(small), "a chunked body under the cap is forwarded whole");
});

test("a chunked webhook body over MAX_JSON_BODY_BYTES is cut at the cap with 413 while still uploading", async () => {
  const { sim, gov } = await setup({}, { MAX_CONCURRENT_GENERATIONS: 3, GOVERNOR_WEBHOOK_KEY: "hardening-webhook-key-0123456789" });
  const created = await call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: generateBody() });
  assert.equal(created.status, 201, created.text);
  const seen = (await call(sim.url, `/_sim/generations/${created.json.id}`)).json;
  const callback = new URL(seen.generation.webhookUrl);
  assert.match(callback.pathname, /^\/governor\/v1\/webhook\/./);
  const r = await openUpload(gov.url, callback.pathname, { headers: { "content-type": "application/json" }, total: MAX_JSON * 4 });
  assertJsonError(r, 413, "payload_too_large", "open chunked webhook");
  // The permit is untouched: the oversized callback changed nothing.
  const st = (await call(gov.url, "/governor/v1/status", { key: SIM_KEY })).json;
  assert.equal(st.concurrency.inUse, 1);
});

// ---------------------------------------------------------------------------
// Finding 13 (and 5): blank secrets are configuration errors.

test("blank GOVERNOR_CLIENT_KEYS or SYNC_WEBHOOK_SECRET, or SYNC_API_KEY alone, is a configuration error that forwards nothing", async () => {
  const sim = await startSim({});
  running.push(sim);
  const cases = [
    [{ GOVERNOR_CLIENT_KEYS: "" }, "GOVERNOR_CLIENT_KEYS"],
    [{ GOVERNOR_CLIENT_KEYS: "", SYNC_API_KEY: SIM_KEY }, "GOVERNOR_CLIENT_KEYS"],
    [{ SYNC_API_KEY: "sk-live-should-not-leak" }, "SYNC_API_KEY"],
    [{ SYNC_WEBHOOK_SECRET: "" }, "SYNC_WEBHOOK_SECRET"],
  ];
  for (const [vars, name] of cases) {
    const gov = await startGovernor({ SYNC_API_BASE: sim.url, ...vars });
    running.push(gov);
    for (const r of [
      await call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: generateBody() }),
      await call(gov.url, "/v2/models"),
      await call(gov.url, "/v2/generations", { key: SIM_KEY }),
    ]) {
      assertJsonError(r, 500, "governor_misconfigured", name);
      assert.ok(r.json.message.includes(name), `message names ${name}: ${r.json.message}`);
      assert.ok(!r.text.includes("should-not-leak"), "a secret value was echoed");
    }
  }
  assert.deepEqual(await sim.requests(1000), [], "a misconfigured governor forwarded a request");
});
