#!/usr/bin/env bash
# Create lip-sync generations through sync-governor with curl.
#
#   GOVERNOR_URL=https://governor.example.com SYNC_API_KEY=sk-... bash examples/curl.sh
#
# SYNC_API_KEY is your Sync key (pass-through mode) or a governor client key
# (managed mode, GOVERNOR_CLIENT_KEYS). Optional: VIDEO_URL, AUDIO_URL,
# MODEL (lipsync-2), POLL_SECONDS (600: how long to follow each job).
#
# 1. POST /v2/generate: a plain create, as against api.sync.so; the governor
#    adds RateLimit-Policy / RateLimit headers (a 429 comes with Retry-After).
# 2. POST /v2/generate with `Prefer: respond-async`: admitted at once (201,
#    a generation) or queued durably (202, a ticket); the ticket is followed
#    with GET /governor/v1/queue/{ticket} until the generation ends.
# 3. The first generation is followed with GET /v2/generate/{id}.
# Needs only bash, curl, sed.
set -euo pipefail
: "${GOVERNOR_URL:?set GOVERNOR_URL, e.g. https://governor.example.com}"
: "${SYNC_API_KEY:?set SYNC_API_KEY (your Sync key, or a governor client key)}"
BASE=${GOVERNOR_URL%/}
VIDEO_URL=${VIDEO_URL:-https://assets.sync.so/docs/example-video.mp4}
AUDIO_URL=${AUDIO_URL:-https://assets.sync.so/docs/example-audio.wav}
MODEL=${MODEL:-lipsync-2}
POLL_SECONDS=${POLL_SECONDS:-600}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The first string value of a top-level field in a compact JSON document.
field() { sed -nE "s/.*\"$1\":\"([^\"]*)\".*/\1/p" | head -1; }
# A response header's value (case-insensitive), without the trailing CR.
header() { { grep -i "^$1:" "$2" || true; } | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
# Statuses a job or generation is still in; anything else is the end.
running() { case "$1" in QUEUED | SUBMITTING | SUBMITTED | PENDING | PROCESSING) return 0 ;; *) return 1 ;; esac; }

# request METHOD PATH [extra curl args...]: body in $TMP/body, headers in
# $TMP/headers, status code on stdout.
request() {
  local method=$1 path=$2
  shift 2
  curl -sS -X "$method" "$BASE$path" -H "x-api-key: $SYNC_API_KEY" \
    -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "$@"
}

BODY=$(printf '{"model":"%s","input":[{"type":"video","url":"%s"},{"type":"audio","url":"%s"}]}' "$MODEL" "$VIDEO_URL" "$AUDIO_URL")

show_limits() {
  echo "  RateLimit-Policy: $(header ratelimit-policy "$TMP/headers")"
  echo "  RateLimit:        $(header ratelimit "$TMP/headers")"
  local retry
  retry=$(header retry-after "$TMP/headers")
  if [ -n "$retry" ]; then echo "  Retry-After:      $retry"; fi
}

# follow PATH: poll until the status is no longer a running one.
follow() {
  local path=$1 deadline=$(($(date +%s) + POLL_SECONDS)) last="" status code
  while :; do
    code=$(request GET "$path")
    [ "$code" = 200 ] || { echo "  GET $path: HTTP $code $(cat "$TMP/body")" >&2; return 1; }
    status=$(field status <"$TMP/body")
    if [ "$status" != "$last" ]; then
      echo "  $status${2:+ }$(field generationId <"$TMP/body")"
      last=$status
    fi
    running "$status" || { FINAL=$status; return 0; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "  still $status after ${POLL_SECONDS}s; stopping" >&2; return 1; }
    sleep 1
  done
}

echo "== POST /v2/generate"
code=$(request POST /v2/generate -H 'content-type: application/json' --data "$BODY")
echo "  HTTP $code"
show_limits
if [ "$code" != 201 ]; then
  echo "  $(cat "$TMP/body")"
  exit 1
fi
FIRST=$(field id <"$TMP/body")
echo "  generation $FIRST: $(field status <"$TMP/body")"

echo "== POST /v2/generate with Prefer: respond-async"
code=$(request POST /v2/generate -H 'content-type: application/json' -H 'prefer: respond-async' --data "$BODY")
echo "  HTTP $code"
show_limits
case "$code" in
  202)
    TICKET=$(field id <"$TMP/body")
    echo "  queued: ticket $TICKET (Location: $(header location "$TMP/headers"))"
    echo "== GET /governor/v1/queue/$TICKET until the generation ends"
    follow "/governor/v1/queue/$TICKET" with-generation
    echo "ticket $TICKET: $FINAL"
    ;;
  201)
    SECOND=$(field id <"$TMP/body")
    echo "  admitted at once: generation $SECOND"
    echo "== GET /v2/generate/$SECOND until it ends"
    follow "/v2/generate/$SECOND"
    echo "generation $SECOND: $FINAL"
    ;;
  *)
    echo "  $(cat "$TMP/body")"
    exit 1
    ;;
esac

echo "== GET /v2/generate/$FIRST until it ends"
follow "/v2/generate/$FIRST"
echo "generation $FIRST: $FINAL"
