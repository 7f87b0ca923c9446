// The JS peer (issue 9, item 4): a Worker and a Durable Object limiter in the
// style of Cloudflare's rate-limiter example. The object keeps one number,
// the GCRA theoretical arrival time (TAT), and persists it with
// `this.ctx.storage.put` on every admission; the Worker calls it over RPC
// (`env.LIMITER.get(id).admit(cost)`), one object per API key. Admitted
// requests are forwarded to env.UPSTREAM exactly like bench/passthrough.mjs;
// refused ones get 429 with Retry-After.
//
// Bench-only routes that split the cost (none reaches the upstream unless it
// says so):
//   GET /_peer/direct      the JS Worker answers itself (no object, no upstream)
//   GET /_peer/noop-rpc    one RPC call to an object method that does nothing
//   GET /_peer/noop-fetch  one fetch() to an object that answers at once
//   any request with `x-peer-variant: nowrite`: the peer without the storage
//     write (the object decides and keeps the TAT in memory only); the header
//     is removed before forwarding.
//   `x-peer-variant: unconfirmed`: the write with `allowUnconfirmed: true`,
//     so the output gate does not hold the reply until it is durable.
import { DurableObject } from "cloudflare:workers";

/** GCRA over one number. Limit PEER_LIMIT per PEER_PERIOD_MS, burst = limit. */
export class Limiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    const limit = Number(env.PEER_LIMIT ?? 100_000);
    const period = Number(env.PEER_PERIOD_MS ?? 60_000);
    this.interval = period / limit; // emission interval T
    this.tolerance = period; // τ = T · burst, burst = limit
    this.tat = 0;
    ctx.blockConcurrencyWhile(async () => {
      this.tat = (await ctx.storage.get("tat")) ?? 0;
    });
  }

  /** Admit `cost` units now, or say how long to wait. */
  admit(cost = 1, persist = true, unconfirmed = false) {
    const now = Date.now();
    const tat = Math.max(this.tat, now);
    const next = tat + cost * this.interval;
    const allowAt = next - this.tolerance;
    if (now < allowAt) return { ok: false, retryAfterMs: Math.ceil(allowAt - now) };
    this.tat = next;
    // Not awaited, as in Cloudflare's examples: the output gate holds this
    // method's answer until the write is durable.
    if (persist) this.ctx.storage.put("tat", next, unconfirmed ? { allowUnconfirmed: true } : undefined);
    return { ok: true };
  }
}

/** A Durable Object that does nothing, reached over RPC or over fetch. */
export class Noop extends DurableObject {
  noop() {
    return null;
  }
  async fetch() {
    return new Response("ok");
  }
}

function forward(request, env) {
  // Same as bench/passthrough.mjs.
  const url = new URL(request.url);
  const target = env.UPSTREAM.replace(/\/$/, "") + url.pathname + url.search;
  const headers = new Headers(request.headers);
  headers.delete("host");
  headers.delete("x-peer-variant");
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  return fetch(target, { method: request.method, headers, body: hasBody ? request.body : undefined });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/_peer/direct") return new Response("ok");
    if (url.pathname === "/_peer/noop-rpc") {
      await env.NOOP.get(env.NOOP.idFromName("noop")).noop();
      return new Response("ok");
    }
    if (url.pathname === "/_peer/noop-fetch") {
      const r = await env.NOOP.get(env.NOOP.idFromName("noop")).fetch("http://noop/");
      return new Response(await r.text());
    }
    const key = request.headers.get("x-api-key") ?? "";
    const variant = request.headers.get("x-peer-variant");
    const verdict = await env.LIMITER.get(env.LIMITER.idFromName(key)).admit(1, variant !== "nowrite", variant === "unconfirmed");
    if (!verdict.ok) {
      return Response.json(
        { error: "rate_limited", retryAfterMs: verdict.retryAfterMs },
        { status: 429, headers: { "retry-after": String(Math.ceil(verdict.retryAfterMs / 1000)) } },
      );
    }
    return forward(request, env);
  },
};
