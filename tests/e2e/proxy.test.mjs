// The governor as a transparent proxy: bodies, queries, upstream answers and
// headers pass unchanged; everything the governor refuses itself is a JSON
// error that never reaches the simulator. Every claim is checked against the
// simulator's own request log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startSim, startGovernor, generateBody, call, rawRequest, sha256, SIM_KEY } from "../lib/harness.mjs";

const MAX_JSON = 2048;
let sim, gov;

before(async () => {
  sim = await startSim({ concurrency: 10, "pending-ms": 50, "processing-ms": 300 });
  gov = await startGovernor({ SYNC_API_BASE: sim.url, MAX_CONCURRENT_GENERATIONS: 10, MAX_JSON_BODY_BYTES: MAX_JSON });
});
after(async () => {
  await gov?.stop();
  await sim?.stop();
});

/** Runs `fn` and returns the simulator log entries it caused. */
async function forwarded(fn) {
  const before = (await sim.requests(1000)).length;
  const result = await fn();
  const all = await sim.requests(1000);
  // The ring holds 1000 entries; this file stays far below that.
  assert.ok(all.length < 1000, "simulator log overflowed; the test cannot tell what was forwarded");
  return { result, entries: all.slice(before) };
}

function assertGovernorError(r, status, errorCode) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(r.headers.get?.("content-type") ?? r.headers["content-type"], /application\/json/);
  assert.ok(r.json, `body is JSON: ${r.text}`);
  assert.equal(r.json.statusCode, status);
  if (errorCode) assert.equal(r.json.errorCode, errorCode);
  assert.equal(typeof r.json.message, "string");
}

test("a JSON generate body reaches Sync byte for byte", async () => {
  // Odd spacing, key order, escapes and non-ASCII: any re-serialisation shows.
  const text =
    '{  "zeta" : 1,\n\t"model":"lipsync-2", "input":[{"type":"video","url":"https://example.com/v.mp4"},' +
    '{"type":"audio","url":"https://example.com/a.wav"}], "outputFileName":"caf\\u00e9 ü 😀", "n": 1.50e2 }';
  assert.ok(Buffer.byteLength(text) < MAX_JSON);
  const { result: r, entries } = await forwarded(() =>
    call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: text, headers: { "content-type": "application/json" } }),
  );
  assert.equal(r.status, 201, r.text);
  assert.equal(entries.length, 1);
  const e = entries[0];
  assert.equal(e.method, "POST");
  assert.equal(e.path, "/v2/generate");
  // Every value byte for byte; the members compacted and the governor's
  // callback added as webhookUrl (the relay is on by default).
  const seen = (await call(sim.url, `/_sim/generations/${r.json.id}`)).json;
  const callback = seen.generation.webhookUrl;
  const expected =
    '{"zeta":1,"model":"lipsync-2","input":[{"type":"video","url":"https://example.com/v.mp4"},' +
    '{"type":"audio","url":"https://example.com/a.wav"}],"outputFileName":"caf\\u00e9 ü 😀","n":1.50e2,"webhookUrl":' +
    JSON.stringify(callback) +
    "}";
  assert.equal(e.body_len, Buffer.byteLength(expected));
  assert.equal(e.body_sha256, sha256(expected));
  assert.equal(r.json.id.length > 0, true);
});

function multipartBody(boundary, parts) {
  const chunks = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename) head += `; filename="${p.filename}"`;
    head += "\r\n";
    if (p.type) head += `Content-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(head + "\r\n"), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

test("a multipart generate with a few MiB file passes byte for byte (sized and chunked)", async () => {
  const video = randomBytes(3 * 1024 * 1024 + 17);
  const audio = randomBytes(256 * 1024);
  const boundary = "----governor-e2e-" + randomBytes(8).toString("hex");
  const body = multipartBody(boundary, [
    { name: "model", data: "lipsync-2" },
    { name: "video", filename: "clip.mp4", type: "video/mp4", data: video },
    { name: "audio", filename: "voice.wav", type: "audio/wav", data: audio },
  ]);
  assert.ok(body.length > MAX_JSON * 100, "the JSON body limit must not apply to uploads");
  const headers = { "content-type": `multipart/form-data; boundary=${boundary}` };

  // 1. With a content-length.
  const { result: r, entries } = await forwarded(() =>
    call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body, headers, timeoutMs: 30_000 }),
  );
  assert.equal(r.status, 201, r.text);
  assert.equal(entries.length, 1);
  const e = entries[0];
  assert.equal(e.body_len, body.length);
  assert.equal(e.body_sha256, sha256(body));
  const files = Object.fromEntries(e.files.map((f) => [f.field, f]));
  assert.equal(files.video.bytes, video.length);
  assert.equal(files.video.sha256, sha256(video));
  assert.equal(files.video.filename, "clip.mp4");
  assert.equal(files.audio.sha256, sha256(audio));

  // 2. Streamed without a content-length (chunked transfer).
  const pieces = [];
  for (let i = 0; i < body.length; i += 256 * 1024) pieces.push(body.subarray(i, i + 256 * 1024));
  const { result: r2, entries: e2 } = await forwarded(() =>
    rawRequest(gov.url, "/v2/generate", {
      method: "POST",
      headers: { ...headers, "x-api-key": SIM_KEY, "transfer-encoding": "chunked" },
      body: pieces,
      timeoutMs: 30_000,
    }),
  );
  assert.equal(r2.status, 201, r2.text);
  assert.equal(e2.length, 1);
  assert.equal(e2[0].body_len, body.length);
  assert.equal(e2[0].body_sha256, sha256(body));
  assert.equal(e2[0].files.find((f) => f.field === "video").sha256, sha256(video));
});

test("query strings reach Sync intact (comma list and repeated form)", async () => {
  for (const q of ["status=PENDING,PROCESSING&limit=5", "status=PENDING&status=PROCESSING", "status=PENDING%2CPROCESSING&limit=5&x=%20a+b&y="]) {
    const { result: r, entries } = await forwarded(() => call(gov.url, `/v2/generations?${q}`, { key: SIM_KEY }));
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json));
    assert.equal(entries.length, 1);
    assert.equal(entries[0].path, "/v2/generations");
    assert.equal(entries[0].query, q);
  }
  // The repeated form filters like the comma form does (the simulator read both values).
  const a = await call(gov.url, "/v2/generations?status=PENDING,PROCESSING,COMPLETED&limit=100", { key: SIM_KEY });
  const b = await call(gov.url, "/v2/generations?status=PENDING&status=PROCESSING&status=COMPLETED&limit=100", { key: SIM_KEY });
  assert.deepEqual(
    b.json.map((g) => g.id).sort(),
    a.json.map((g) => g.id).sort(),
  );
});

test("upstream error statuses and bodies come back unchanged", async () => {
  // 404 for an unknown generation.
  const { result: r404, entries } = await forwarded(() => call(gov.url, "/v2/generate/does-not-exist", { key: SIM_KEY }));
  assert.equal(entries.length, 1);
  assert.equal(entries[0].path, "/v2/generate/does-not-exist");
  assert.equal(entries[0].status, 404);
  const direct404 = await call(sim.url, "/v2/generate/does-not-exist", { key: SIM_KEY });
  assert.equal(r404.status, 404);
  assert.equal(r404.text, direct404.text);
  assert.equal(r404.json.errorCode, "not_found");

  // 409 for deleting an active generation.
  const created = await call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: generateBody({ options: { sim_duration_ms: 60_000 } }) });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const { result: r409, entries: e409 } = await forwarded(() => call(gov.url, `/v2/generations/${id}`, { method: "DELETE", key: SIM_KEY }));
  assert.equal(e409.length, 1);
  assert.equal(e409[0].method, "DELETE");
  assert.equal(e409[0].status, 409);
  const direct409 = await call(sim.url, `/v2/generations/${id}`, { method: "DELETE", key: SIM_KEY });
  assert.equal(r409.status, 409);
  assert.equal(r409.text, direct409.text);
  assert.equal(r409.json.errorCode, "generation_not_deletable_while_processing");

  // Sync's own 400 (a model it does not know) and 401 (a key it does not know).
  const { result: r400, entries: e400 } = await forwarded(() =>
    call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: generateBody({ model: "no-such-model" }) }),
  );
  assert.equal(e400.length, 1);
  assert.equal(r400.status, 400);
  assert.match(r400.json.message, /no-such-model/);
  const { result: r401, entries: e401 } = await forwarded(() => call(gov.url, "/v2/generations", { key: "sk-not-a-sim-key" }));
  assert.equal(e401.length, 1);
  assert.equal(r401.status, 401);
  assert.equal(r401.json.errorCode, "unauthorized");
});

const HOP = {
  "keep-alive": "timeout=5",
  te: "trailers",
  upgrade: "h2c",
  "proxy-authorization": "Basic dXNlcjpwYXNz",
};

test("hop-by-hop request headers are not forwarded; end-to-end ones are", async () => {
  const { result: r, entries } = await forwarded(() =>
    rawRequest(gov.url, "/v2/generations?limit=1", {
      headers: { "x-api-key": SIM_KEY, connection: "keep-alive", ...HOP, "x-end-to-end": "kept", "idempotency-key": "abc-123", accept: "application/json" },
    }),
  );
  assert.equal(r.status, 200, r.text);
  assert.equal(entries.length, 1);
  const seen = entries[0].headers;
  for (const name of ["connection", ...Object.keys(HOP)]) assert.equal(seen[name], undefined, `${name} was forwarded`);
  assert.equal(seen["x-end-to-end"], "kept");
  assert.equal(seen["idempotency-key"], "abc-123");
  assert.equal(seen["x-api-key"], "sk-s…");
  // And no hop-by-hop field comes back to the client.
  for (const name of ["keep-alive", "upgrade", "te", "trailer", "proxy-authenticate"]) assert.equal(r.headers[name], undefined);
});

test(
  "headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1)",
  async () => {
    const { result: r, entries } = await forwarded(() =>
      rawRequest(gov.url, "/v2/generations?limit=1", { headers: { "x-api-key": SIM_KEY, connection: "keep-alive, x-hop", "x-hop": "1" } }),
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(entries.length, 1);
    assert.equal(entries[0].headers["x-hop"], undefined, "x-hop (listed in Connection) reached Sync");
  },
);

test("unknown paths are a 404 JSON error and nothing is forwarded", async () => {
  const paths = ["/", "/v1/generate", "/admin", "/v2", "/v2/../admin", "/v2/%2e%2e/admin", "/V2/generate", "/governor", "/governor/v1/nope", "/_sim/stats"];
  const { result, entries } = await forwarded(async () => {
    const out = [];
    for (const p of paths) {
      for (const method of ["GET", "POST"]) {
        out.push([p, method, await rawRequest(gov.url, p, { method, headers: { "x-api-key": SIM_KEY, "content-type": "application/json" }, body: method === "POST" ? "{}" : undefined })]);
      }
    }
    return out;
  });
  for (const [p, method, r] of result) {
    assert.equal(r.status, 404, `${method} ${p} → ${r.status} ${r.text}`);
    assert.equal(r.json?.errorCode, "not_found", `${method} ${p}`);
    assert.match(r.headers["content-type"], /application\/json/);
  }
  assert.deepEqual(entries.map((e) => `${e.method} ${e.path}`), [], "the simulator saw requests for unknown paths");
});

test("a missing or empty key is a 401 JSON error and nothing is forwarded", async () => {
  const cases = [
    { method: "POST", path: "/v2/generate", body: generateBody() },
    { method: "GET", path: "/v2/generations" },
    { method: "GET", path: "/v2/generate/abc" },
    { method: "GET", path: "/v2/generations", headers: { "x-api-key": "" } },
    { method: "GET", path: "/v2/generations", headers: { "x-api-key": "   " } },
    { method: "GET", path: "/v2/generations", headers: { authorization: "Bearer " } },
    { method: "GET", path: "/v2/generations", headers: { authorization: "Basic c2stc2ltLWxvY2Fs" } },
    { method: "GET", path: "/governor/v1/status" },
  ];
  const { result, entries } = await forwarded(async () => {
    const out = [];
    for (const c of cases) out.push(await call(gov.url, c.path, c));
    return out;
  });
  result.forEach((r, i) => assertGovernorError(r, 401, "missing_api_key", JSON.stringify(cases[i])));
  assert.deepEqual(entries, []);
});

test("malformed JSON on POST /v2/generate is a 400 JSON error and nothing is forwarded", async () => {
  const bodies = ["{nope", '{"model":"lipsync-2",', "", "\u0000\u0001", '{"a":1}}', "[1,2"];
  const { result, entries } = await forwarded(async () => {
    const out = [];
    for (const b of bodies)
      out.push(await call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: b, headers: { "content-type": "application/json; charset=utf-8" } }));
    return out;
  });
  result.forEach((r) => assertGovernorError(r, 400, "invalid_request"));
  assert.deepEqual(entries, []);
});

test("an oversized JSON body is a 413 and nothing is forwarded", async () => {
  const big = JSON.stringify(generateBody({ outputFileName: "x".repeat(MAX_JSON) }));
  const { result, entries } = await forwarded(async () => [
    await call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: big, headers: { "content-type": "application/json" } }),
    // No content-length: the governor must count what it reads.
    await rawRequest(gov.url, "/v2/generate", {
      method: "POST",
      headers: { "x-api-key": SIM_KEY, "content-type": "application/json", "transfer-encoding": "chunked" },
      body: [big.slice(0, 1000), big.slice(1000)],
    }),
  ]);
  for (const r of result) {
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.errorCode, "payload_too_large");
  }
  assert.deepEqual(entries, []);
  // Just under the limit still passes.
  const fits = JSON.stringify(generateBody({ outputFileName: "y".repeat(MAX_JSON - 400) }));
  assert.ok(Buffer.byteLength(fits) <= MAX_JSON);
  const ok = await call(gov.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: fits, headers: { "content-type": "application/json" } });
  assert.equal(ok.status, 201, ok.text);
});

test("no bad input ever gets a 5xx", async () => {
  const bad = [
    ["GET", "/v2/generate/%zz"],
    ["GET", "/v2/generate/" + "a".repeat(4000)],
    ["GET", "/v2/generate/%F0%9F%98%80"],
    ["GET", "/v2/generations?limit=%zz&status=%00"],
    ["GET", "/v2/generations?limit=-1"],
    ["PUT", "/v2/generate"],
    ["PATCH", "/v2/generations/x"],
    ["HEAD", "/v2/generate"],
    ["DELETE", "/v2/generate"],
    ["POST", "/governor/v1/status"],
    ["DELETE", "/governor/v1/health"],
    ["POST", "/v2/generate", { "content-type": "application/json" }, "null"],
    ["POST", "/v2/generate", { "content-type": "application/json" }, "[]"],
    ["POST", "/v2/generate", { "content-type": "application/json" }, '"str"'],
    ["POST", "/v2/generate", { "content-type": "application/json" }, "1e99999"],
    ["POST", "/v2/generate", { "content-type": "application/json" }, '{"model":5,"input":"x"}'],
    ["POST", "/v2/generate", { "content-type": "text/plain" }, "{nope"],
    ["POST", "/v2/generate", { "content-type": "multipart/form-data; boundary=zz" }, "--zz\r\nnot multipart"],
    ["POST", "/v2/generate", { "content-type": "multipart/form-data" }, "no boundary"],
    ["POST", "/v2/generate", { "idempotency-key": "bad key with spaces", "content-type": "application/json" }, JSON.stringify(generateBody({ input: [{ type: "video", url: "https://x/reject.mp4" }] }))],
    ["GET", "/v2/generations", { "x-api-key": "k\u00e9y-latin1" }],
    ["GET", "/v2/generations", { authorization: "Bearer" }],
    ["GET", "/v2/generations", { authorization: "Bearer \u00ff\u00fe" }],
    ["GET", "/v2/generations", { "content-length": "0" }],
    ["GET", "/v2/generations", { origin: "null" }],
    ["OPTIONS", "/v2/generate"],
    ["OPTIONS", "/nowhere"],
  ];
  for (const [method, path, extra = {}, body] of bad) {
    const headers = { "x-api-key": SIM_KEY, ...extra };
    const r = await rawRequest(gov.url, path, { method, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v, "latin1").toString("latin1")])), body });
    assert.ok(r.status < 500, `${method} ${path} ${JSON.stringify(extra)} → ${r.status} ${r.text}`);
    if (r.status >= 400 && method !== "HEAD") assert.ok(r.json, `${method} ${path} error body is JSON: ${r.text}`);
  }
  const stats = await sim.stats();
  assert.equal(stats.totals.injected_5xx, 0);
});

test("GET /v2/models works without a key and is forwarded without one", async () => {
  const { result: r, entries } = await forwarded(() => call(gov.url, "/v2/models"));
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json) || typeof r.json === "object");
  assert.equal(entries.length, 1);
  assert.equal(entries[0].path, "/v2/models");
  assert.equal(entries[0].headers["x-api-key"], undefined);
  const direct = await call(sim.url, "/v2/models");
  assert.equal(r.text, direct.text);
  const errors = await call(gov.url, "/v2/errors");
  assert.equal(errors.status, 200);
});

test("/governor/v1/health answers without a key and forwards nothing", async () => {
  const { result: r, entries } = await forwarded(() => call(gov.url, "/governor/v1/health"));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { ok: true });
  assert.deepEqual(entries, []);
});

test(
  "pass-through: a Sync key sent as Authorization: Bearer reaches Sync as x-api-key",
  async () => {
    const { result: r, entries } = await forwarded(() =>
      call(gov.url, "/v2/generate", { method: "POST", body: generateBody(), headers: { authorization: `Bearer ${SIM_KEY}` } }),
    );
    assert.equal(entries.length, 1);
    assert.equal(entries[0].headers["x-api-key"], "sk-s…", "Sync did not receive the key as x-api-key");
    assert.equal(entries[0].key_index, 0);
    assert.equal(r.status, 201, r.text);
  },
);

test("an unreachable Sync is a 502 JSON error and the create's permit is kept until Sync can tell", async () => {
  // A port that was just free: nothing listens there.
  const net = await import("node:net");
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dead = await startGovernor({ SYNC_API_BASE: `http://127.0.0.1:${port}`, MAX_CONCURRENT_GENERATIONS: 1 });
  try {
    const r = await call(dead.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: generateBody() });
    assertGovernorError(r, 502, "upstream_unavailable");
    // A failed connection may still have reached Sync: the permit stays (as
    // unsettled) until a listing begun later shows what Sync has; the next
    // create is the governor's 429, never a second create at Sync.
    const again = await call(dead.url, "/v2/generate", { method: "POST", key: SIM_KEY, body: generateBody() });
    assert.equal(again.status, 429, again.text);
    const s = await call(dead.url, "/governor/v1/status", { key: SIM_KEY });
    assert.equal(s.json.concurrency.inUse, 1);
  } finally {
    await dead.stop();
  }
});
