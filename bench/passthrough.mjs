// A bare pass-through Worker: the baseline for the governor's overhead.
// Forwards method, path, query, headers and body to env.UPSTREAM unchanged
// (minus the host header) and streams the answer back. No admission, no
// Durable Object, no wasm.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const target = env.UPSTREAM.replace(/\/$/, "") + url.pathname + url.search;
    const headers = new Headers(request.headers);
    headers.delete("host");
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    return fetch(target, { method: request.method, headers, body: hasBody ? request.body : undefined });
  },
};
