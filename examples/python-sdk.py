"""The official Python SDK (syncsdk) through sync-governor: the only change
from calling Sync directly is ``base_url``.

    pip install syncsdk==0.3.0
    GOVERNOR_URL=https://governor.example.com SYNC_API_KEY=sk-... python examples/python-sdk.py

SYNC_API_KEY is your Sync key (pass-through mode) or a governor client key
(managed mode). Optional: VIDEO_URL, AUDIO_URL, MODEL, POLL_SECONDS (600).

``Prefer: wait=30`` asks the governor to hold the create for up to 30 s until
the account has room instead of answering 429 at once; a 429 that still comes
back is an ApiError whose body carries ``retryAfterMs``, ``policy`` and ``limit``.
"""

import os
import sys
import time

from sync import Sync
from sync.common import Audio, GenerationOptions, Video
from sync.core.api_error import ApiError

RUNNING = {"PENDING", "PROCESSING"}


def main() -> int:
    base_url = os.environ.get("GOVERNOR_URL", "").rstrip("/")
    api_key = os.environ.get("SYNC_API_KEY")
    if not base_url or not api_key:
        print("set GOVERNOR_URL and SYNC_API_KEY", file=sys.stderr)
        return 2
    poll_seconds = float(os.environ.get("POLL_SECONDS", "600"))

    client = Sync(base_url=base_url, api_key=api_key)
    # The governor already paces the account: no SDK retries on top of it.
    options = {"max_retries": 0, "timeout_in_seconds": 60}

    try:
        created = client.generations.create(
            model=os.environ.get("MODEL", "lipsync-2"),
            input=[
                Video(url=os.environ.get("VIDEO_URL", "https://assets.sync.so/docs/example-video.mp4")),
                Audio(url=os.environ.get("AUDIO_URL", "https://assets.sync.so/docs/example-audio.wav")),
            ],
            options=GenerationOptions(sync_mode="loop"),
            request_options={**options, "additional_headers": {"Prefer": "wait=30"}},
        )
    except ApiError as err:
        if err.status_code == 429 and isinstance(err.body, dict):
            print(
                f"refused: retry in {err.body.get('retryAfterMs')} ms "
                f"({err.body.get('policy')}, limit {err.body.get('limit')})",
                file=sys.stderr,
            )
            return 1
        raise
    print(f"created {created.id}: {created.status}", flush=True)

    # Poll until the generation ends (or pass webhook_url: the governor
    # relays Sync's callback to it).
    deadline = time.monotonic() + poll_seconds
    generation, last = created, created.status
    while generation.status in RUNNING:
        if time.monotonic() > deadline:
            print(f"still {generation.status} after {poll_seconds:g} s", file=sys.stderr)
            return 1
        time.sleep(1)
        generation = client.generations.get(created.id, request_options=options)
        if generation.status != last:
            last = generation.status
            print(f"{created.id}: {last}", flush=True)
    output = f" {generation.output_url}" if generation.output_url else ""
    print(f"generation {generation.id}: {generation.status}{output}", flush=True)
    return 0 if generation.status == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
