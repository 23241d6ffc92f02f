"""OpenAI's speech answer, sent sentence by sentence.

The text is cut into the parts the voice task speaks it in (its sentences,
``PredictsInParts``), and each part is queued on the base's worker as a job
of its own. In mp3, opus, aac and pcm the first sentence's audio leaves as
soon as it is spoken, through one encoder for the whole answer (or, with
``stream_format: "sse"``, as OpenAI's ``speech.audio.delta`` events). A
text of one sentence is sent whole (an MP3 file then names its encoder's
delay, so players cut it: gapless), and so are wav and flac, whose headers
carry the length. Other requests take turns between the parts, a client
that hangs up stops the work after the part in hand, and the request holds
one queue place from start to end. Whatever fails before the first byte (a
character the voice cannot speak, a full queue) is an ordinary JSON error;
a failure later cuts the stream short, which the client sees as a broken
transfer, never as a whole answer. So does an adapter rewritten while the
answer is spoken: the provenance header names the versions that speak all
of it.
"""

from __future__ import annotations

import base64
import json
import threading
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi.responses import Response, StreamingResponse

from lorakit.serving.audio_formats import STREAMED, StreamEncoder, encode
from lorakit.serving.service import RequestError
from lorakit.serving.worker import BaseWorker, Job

#: ``run(worker, job, field, reserved)``: the app's way to get a job's records.
Run = Callable[[BaseWorker, Job, str, bool], Awaitable[list]]


async def speak(body: Any, worker: BaseWorker, request: Job, run: Run, gone: Callable[[], Awaitable[bool]]) -> Response:
    """The answer to ``body`` (a ``SpeechRequest``) from ``worker``, whose
    mix and options ``request`` carries; ``gone`` says whether the client has
    hung up (asked between parts: an answer sent whole is not written until
    it is spoken, so only this notices)."""
    import numpy as np

    from lorakit.plugins import get_host

    gap_seconds = float(getattr(get_host().task(worker.task_name), "part_gap_seconds", 0.0))
    worker.capacity.take()  # QueueFull: a 503, by the app's handler
    streaming = False
    try:
        [parts] = await run(worker, Job(request.mix, request.options, [body.input], parts=True), "input", True)
        first = Job(request.mix, request.options, [parts[0]])
        [spoken] = await run(worker, first, "input", True)
        rate = int(spoken["sample_rate"])
        gap = np.zeros(round(gap_seconds * rate), dtype=np.float32)
        headers = {"X-Lorakit-Provenance": json.dumps(first.provenance)}
        whole = body.response_format not in STREAMED or len(parts) == 1  # one sentence: sent whole, gapless

        async def audio() -> AsyncIterator[Any]:
            """Each part's audio, the gap before every part but the first; an
            adapter rewritten meanwhile (a run resumed in place) breaks the
            answer rather than finish it in another voice than its header names."""
            yield spoken["audio"]
            for part in parts[1:]:
                if whole and await gone():  # a stream learns it from its failed send
                    raise ClientGone
                job = Job(request.mix, request.options, [part])
                [record] = await run(worker, job, "input", True)
                if job.provenance != first.provenance:
                    raise VoiceChanged("an adapter of this answer was rewritten while it was spoken; the answer was "
                                       "cut short rather than finished in the new voice: ask again")
                yield np.concatenate([gap, np.asarray(record["audio"], dtype=np.float32).reshape(-1)])

        if whole:
            try:
                spoken_whole = np.concatenate([piece async for piece in audio()])
            except VoiceChanged as exc:  # nothing sent yet: an ordinary error, to retry
                raise RequestError(str(exc), "voice", 503) from None
            except ClientGone:  # its queue place goes back now, not after the rest of its text
                return Response(status_code=CLIENT_GONE)
            data, media_type = encode(spoken_whole, rate, body.response_format)
            if body.stream_format == "sse":
                return Response(_event(data) + _done(), media_type="text/event-stream", headers=headers)
            return Response(data, media_type=media_type, headers=headers)
        encoder = StreamEncoder(body.response_format, rate)
        media_type = "text/event-stream" if body.stream_format == "sse" else encoder.media_type
        release = _once(worker.capacity.give_back)
        stream = _sent(audio(), encoder, body.stream_format == "sse", release)
        weakref.finalize(stream, release)  # a stream never started (its client gone first) gives the place back too
        streaming = True
        return StreamingResponse(stream, media_type=media_type, headers=headers)
    finally:
        if not streaming:
            worker.capacity.give_back()


class VoiceChanged(RuntimeError):
    """The adapters speaking an answer changed between two of its parts."""


class ClientGone(Exception):
    """The client hung up before its answer was spoken."""


#: The status counted for a request whose client left before its answer (nginx's 499).
CLIENT_GONE = 499


async def _sent(audio: AsyncIterator[Any], encoder: StreamEncoder, sse: bool,
                release: Callable[[], None]) -> AsyncIterator[bytes]:
    """The encoded stream, piece by piece; the queue place is given back
    however it ends (done, failed, or the client gone)."""
    try:
        async for piece in audio:
            data = encoder.push(piece)
            if data:
                yield _event(data) if sse else data
        data = encoder.finish()
        if sse:
            yield (_event(data) if data else b"") + _done()
        elif data:
            yield data
    finally:
        release()


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, done at the first call only."""
    done = threading.Lock()

    def once() -> None:
        if done.acquire(blocking=False):
            action()

    return once


def _event(data: bytes) -> bytes:
    """One server-sent ``speech.audio.delta`` event carrying ``data``."""
    return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})


def _done() -> bytes:
    # VITS reads characters and makes samples, not tokens: nothing to count.
    return sse_event({"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}})


def sse_event(event: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``event`` as JSON."""
    return f"data: {json.dumps(event)}\n\n".encode()
