"""The FastAPI app of ``lorakit serve``.

Routes: OpenAI's ``POST /v1/audio/speech`` (voice-clone adapters as voices)
and ``POST /v1/chat/completions`` (caption and VQA models answering about
an image), ``POST /v1/captions``, ``POST /v1/vqa``, ``POST /v1/music``, and
``POST /v1/predict/{task}`` for any task whose inputs are texts (a plugin's
own); ``GET /v1/models``, ``/v1/audio/voices`` and ``/v1/audio/models``
(speech clients' lists), ``/healthz``, ``/metrics``; the web page ``/`` and
run reports under ``/runs``. Every model call goes through the base's worker
(``lorakit.serving.worker``); errors are OpenAI-style JSON naming the field.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import tempfile
import time
import traceback
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from lorakit.errors import LorakitError
from lorakit.predictions import plain
from lorakit.serving.audio_formats import encode
from lorakit.serving.auth import LoopbackNamesOnly, RequireKey
from lorakit.serving.chat import (ANSWER_FIELDS, answer_length, chat_input, chat_target, completion,
                                  completion_chunks, vqa_question)
from lorakit.serving.metrics import Metrics
from lorakit.serving.requests import (
    ChatRequest,
    MusicRequest,
    PredictRequest,
    SpeechRequest,
    adapters_from_form,
    image_from_base64,
    image_suffix,
)
from lorakit.serving.service import RequestError, Service
from lorakit.serving.speech import CLIENT_GONE, speak
from lorakit.serving.worker import BaseWorker, Job, QueueFull, Stopped

# The built-in tasks behind the named endpoints.
SPEECH_TASK, CAPTION_TASK, VQA_TASK, MUSIC_TASK = "voice-clone", "caption", "vqa", "music-style"
#: Tasks whose inputs are images, and the route that takes them as uploads.
IMAGE_ROUTES = {CAPTION_TASK: "/v1/captions", VQA_TASK: "/v1/vqa"}
#: OpenAI's speech model names: they mean "the served voice base" when there is one.
OPENAI_SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
#: Largest request body (an image upload), in bytes.
MAX_BODY = 16 * 1024 * 1024


def create_app(service: Service, max_body: int = MAX_BODY, api_key: str | None = None,
               loopback_names_only: bool = False) -> FastAPI:
    """The app over a started ``service``; with ``api_key``, requests must
    carry it; with ``loopback_names_only`` (a keyless server on this machine),
    they must be addressed to localhost (``lorakit.serving.auth``)."""
    app = FastAPI(title="lorakit", docs_url="/docs", redoc_url=None)
    metrics = Metrics()
    service.on_batch = metrics.observe_batch
    for worker in service.workers.values():
        worker.on_batch = metrics.observe_batch
    uploads = Path(tempfile.mkdtemp(prefix="lorakit-serve-"))
    app.router.on_shutdown.append(lambda: shutil.rmtree(uploads, ignore_errors=True))
    _errors(app)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        metrics.rejected.inc()
        return _error(f"{exc}; retry in a moment", None, 503, {"Retry-After": "1"})

    if api_key is not None:
        app.add_middleware(RequireKey, key=api_key)
    if loopback_names_only:
        app.add_middleware(LoopbackNamesOnly)
    app.add_middleware(LimitAndCount, metrics=metrics, max_body=max_body)  # the outer one: refusals counted too

    async def answer(task: str, adapters: list[tuple[str, float]], model: str | None, inputs: list[Any],
                     options: dict[str, Any] | None = None, aliases: tuple[str, ...] = (),
                     field: str | None = None) -> tuple[list, dict]:
        """The task's records for ``inputs`` and their provenance; ``field``
        is the request field the inputs came from, named when the task
        refuses them."""
        worker, mix = await run_in_threadpool(service.resolve, task, adapters, model, aliases)
        job = Job(mix, tuple(sorted((options or {}).items())), inputs)
        records = await run(worker, job, field)
        return records, job.provenance

    async def run(worker: BaseWorker, job: Job, field: str | None, reserved: bool = False) -> list:
        """``job``'s records from ``worker``, its failures as the client's (400)
        or the server's (500, logged) errors."""
        future = worker.submit(job, reserved)  # QueueFull: a 503, below
        try:
            return await asyncio.wrap_future(future)
        except Stopped:
            raise  # 503, by its handler
        except LorakitError as exc:  # the task refused the input (a character it cannot speak...)
            raise RequestError(_without_flag(str(exc)), field, 400) from None
        except Exception as exc:  # noqa: BLE001 - one failed request, logged; the server goes on
            traceback.print_exception(exc)
            raise RequestError(f"the model failed on this request ({type(exc).__name__}: {exc})", None, 500) from None

    # -- OpenAI speech -------------------------------------------------------------

    @app.post("/v1/audio/speech")
    async def speech(body: SpeechRequest, request: Request) -> Response:
        adapters, options, model = await run_in_threadpool(_voice, service, body)
        try:
            worker, mix = await run_in_threadpool(service.resolve, SPEECH_TASK, adapters, model, OPENAI_SPEECH_MODELS)
        except RequestError as exc:  # the adapter came from `voice` when the request names none
            raise (RequestError(exc.message, "voice", exc.status) if exc.param == "adapters" and not body.adapters
                   else exc) from None
        options["length_scale"] = _length_scale(service, adapters, body.speed)
        job = Job(mix, tuple(sorted(options.items())), [body.input])
        return await speak(body, worker, job, run, request.is_disconnected)

    # -- images --------------------------------------------------------------------

    @app.post("/v1/captions")
    async def caption(request: Request) -> dict[str, Any]:
        fields = await _image_request(request, uploads)
        try:
            records, provenance = await answer(CAPTION_TASK, fields["adapters"], fields["model"], [str(fields["path"])],
                                               field="image")
        finally:
            fields["path"].unlink(missing_ok=True)
        return {"caption": records[0]["caption"], **_generation_fields(records[0]), **provenance}

    @app.post("/v1/vqa")
    async def vqa(request: Request) -> dict[str, Any]:
        fields = await _image_request(request, uploads)
        question = fields["question"]
        try:
            if not isinstance(question, str) or not question.strip() or len(question) > 1000:
                raise RequestError("question must be a non-empty text of at most 1000 characters", "question")
            records, provenance = await answer(VQA_TASK, fields["adapters"], fields["model"],
                                               [{"image": str(fields["path"]), "question": question}],
                                               field="question")
        finally:
            fields["path"].unlink(missing_ok=True)
        return {"question": question, "answer": records[0]["answer"], **_generation_fields(records[0]), **provenance}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        task, adapters, model = await run_in_threadpool(chat_target, service, _model_list, body.model,
                                                        body.mix())
        said = chat_input(body.messages)
        path = await _saved_image(said.image, uploads, said.image_param)
        try:
            inputs = [str(path)] if task == CAPTION_TASK else [{"image": str(path), "question": vqa_question(said)}]
            options = answer_length(service, task, adapters, body.token_limit())
            records, provenance = await answer(task, adapters, model, inputs, options,
                                               aliases=tuple(n for n, _ in adapters),
                                               field=said.image_param if task == CAPTION_TASK else said.text_param)
        finally:
            path.unlink(missing_ok=True)
        field = ANSWER_FIELDS[task]
        if body.stream:
            return StreamingResponse(completion_chunks(body.model, records[0], field, provenance, body.streams_usage()),
                                     media_type="text/event-stream")
        return completion(body.model, records[0], field, provenance)

    # -- music and any text-input task ---------------------------------------------

    @app.post("/v1/music")
    async def music(body: MusicRequest) -> dict[str, Any]:
        options = {} if body.seconds is None else {"seconds": body.seconds}
        records, provenance = await answer(MUSIC_TASK, body.mix(), body.model, [body.prompt], options,
                                           field="prompt")
        data, media_type = encode(records[0]["audio"], records[0]["sample_rate"], body.response_format)
        return {"prompt": body.prompt, "seconds": records[0].get("seconds"), "media_type": media_type,
                "audio": base64.b64encode(data).decode(), **provenance}

    @app.post("/v1/predict/{task}")
    async def predict(task: str, body: PredictRequest) -> dict[str, Any]:
        if task in IMAGE_ROUTES:  # its inputs are images, which this route (texts only) cannot carry
            raise RequestError(f"{task} reads images: upload them to {IMAGE_ROUTES[task]}", "task")
        for i, text in enumerate(body.inputs):
            if await run_in_threadpool(_names_a_file, text):  # a task reading paths must not read the server's
                raise RequestError(f"inputs.{i} names a file on the server; this route takes texts, not paths "
                                   "(images go to /v1/captions and /v1/vqa as uploads)", f"inputs.{i}")
        records, provenance = await answer(task, body.mix(), body.model, list(body.inputs), field="inputs")
        return {"predictions": [_jsonable(r) for r in records], **provenance}

    # -- what is served ------------------------------------------------------------

    @app.api_route("/healthz", methods=["GET", "HEAD"])  # HEAD: load balancers' health checks
    async def healthz() -> dict[str, Any]:
        bases = [{"task": w.task_name, "base": w.base_name, "ready": w.loaded is not None, "error": w.error}
                 for w in service.workers.values()]
        return {"status": "ok", "bases": bases, "queued": service.capacity.taken,
                "queue_size": service.capacity.size}

    # The listings look again at the folders but wait for no load: one queued
    # behind a long job (a minute of music) would hold up the page and every
    # client's menu. What is found and not yet loaded is listed as loading.

    @app.api_route("/v1/models", methods=["GET", "HEAD"])
    async def models() -> dict[str, Any]:
        await run_in_threadpool(service.refresh, wait=False)
        return {"object": "list", "data": _model_list(service),
                "refused": {**service.broken, **{name: reason for w in service.workers.values() if w.loaded
                                                 for name, reason in w.loaded.refused.items()}}}

    @app.get("/v1/audio/voices")
    async def voices() -> dict[str, Any]:
        """The voices ``/v1/audio/speech`` takes, in the shape speech clients
        (Open WebUI) read from an OpenAI-compatible server."""
        await run_in_threadpool(service.refresh, wait=False)
        return {"voices": _voice_list(service)}

    @app.get("/v1/audio/models")
    async def speech_models() -> dict[str, Any]:
        """The speech model names ``/v1/audio/speech`` takes: OpenAI's, which
        mean the voice base served, and each voice base by name."""
        served = [m["id"] for m in _model_list(service) if m["task"] == SPEECH_TASK and m["kind"] == "base"]
        return {"models": [{"id": name} for name in (*OPENAI_SPEECH_MODELS, *served)] if served else []}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(service), media_type="text/plain; version=0.0.4")

    # -- the web page and run reports ------------------------------------------------

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    async def page() -> str:
        return (Path(__file__).parent / "page.html").read_text(encoding="utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/runs")
    async def runs() -> dict[str, Any]:
        await run_in_threadpool(service.refresh, wait=False)
        return {"runs": [_run_summary(entry) for entry in service.adapters.values() if entry.run_dir is not None]}

    @app.get("/runs/{name:path}/report", response_class=HTMLResponse)
    async def report(name: str) -> str:
        from lorakit.report_page import run_report_html

        run_dir = await run_in_threadpool(service.run_dir, name)
        return await run_in_threadpool(run_report_html, run_dir, embed=False)

    @app.get("/runs/{name:path}/files/{file:path}")
    async def run_file(name: str, file: str) -> FileResponse:
        run_dir = (await run_in_threadpool(service.run_dir, name)).resolve()
        try:
            path = (run_dir / file).resolve()
            found = path.is_relative_to(run_dir) and path.is_file()
        except (OSError, ValueError):  # a name too long for the disk, a NUL: no such file either
            found = False
        if not found:
            raise RequestError(f"no file {file[:200]!r} in run {name!r}", "file", 404)
        return FileResponse(path)

    return app


class LimitAndCount:
    """Refuses bodies over ``max_body`` (413) and counts every request by
    route and status, with its time to the last byte. Plain ASGI, so a
    streamed answer's bytes pass as they come and a failure halfway through
    reaches the server, which breaks the transfer rather than end it as if
    whole."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int):
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, answered, received, over = time.perf_counter(), 500, False, 0, False

        async def sending(message: dict) -> None:
            nonlocal status, answered
            if over and not answered:
                return  # the app's answer to a body it saw cut short: the 413 below replaces it
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        async def counted() -> dict:
            # A body sent in chunks has no Content-Length to check up front: it is
            # counted as it comes, and the app sees the client leave at the limit.
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                over = received > self.max_body
            return {"type": "http.disconnect"} if over else message

        too_big = _error(f"the request body is over {self.max_body // (1024 * 1024)} MB (the server takes up to "
                         f"lorakit serve --max-upload MB)", None, 413)
        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await too_big(scope, receive, sending)
            else:
                try:
                    await self.app(scope, counted, sending)
                except Exception:  # a route that reads the body itself fails on the client leaving
                    if not over or answered:
                        raise
                if over and not answered:
                    over = False  # let the 413 through
                    await too_big(scope, receive, sending)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def _voice(service: Service, body: SpeechRequest) -> tuple[list[tuple[str, float]], dict[str, Any], str]:
    """A speech request's adapters, voice options and base: ``voice`` names
    an adapter, or one of a base's own voices (which names the base when
    ``model`` does not)."""
    adapters = body.mix()
    options: dict[str, Any] = {}
    model = body.model
    if not adapters:
        if body.voice not in service.adapters and not _bases_speaking(service, body.voice):
            service.refresh(force=True, wait=False)  # an adapter trained since the last look?
            service.settle_task(SPEECH_TASK)  # or a voice base found since, loaded
        if body.voice in service.adapters:
            adapters = [(body.voice, 1.0)]
        else:
            worker = _base_with_voice(service, body.voice, body.model)
            model = worker.base_name
            speakers = _speakers(worker.loaded.base.model)
            if body.voice in speakers:
                options["slot"] = body.voice
            elif not _speaks(worker, body.voice):
                raise _no_voice(service, body.voice, f"a voice of the base ({', '.join(base_voices(worker))})")
    elif body.voice in _speakers_of_base(service, adapters):
        options["slot"] = body.voice
    return adapters, options, model


def _length_scale(service: Service, adapters: list[tuple[str, float]], speed: float) -> float:
    """The first adapter's speaking rate (the base's without one) scaled by
    ``speed``; called once the request is resolved, so its adapters are known."""
    return float(service.saved_option(SPEECH_TASK, adapters, "length_scale")) / speed


def _bases_speaking(service: Service, voice: str) -> list[BaseWorker]:
    """The loaded voice bases with ``voice`` among their own voices."""
    return [w for w in service.bases_of(SPEECH_TASK) if _speaks(w, voice)]


def _speaks(worker: BaseWorker, voice: str) -> bool:
    """``voice`` is one of the base's speakers, or its one voice (by short or whole name)."""
    if worker.loaded is None:
        return False
    speakers = _speakers(worker.loaded.base.model)
    return voice in speakers if speakers else voice in (_voice_name(worker.base_name), worker.base_name)


def _no_voice(service: Service, voice: str, bases: str) -> RequestError:
    return RequestError(f"no voice {voice!r}: name a served voice-clone adapter "
                        f"({', '.join(service.names(SPEECH_TASK)) or 'none'}) or {bases}", "voice")


def _base_with_voice(service: Service, voice: str, model: str) -> BaseWorker:
    """The voice base ``model`` names; for OpenAI's model names (``tts-1``),
    the one served, or of several the only one with ``voice`` among its
    voices, so a client whose model name is fixed reaches every base."""
    if model in OPENAI_SPEECH_MODELS and len(service.bases_of(SPEECH_TASK)) > 1:
        speaking = _bases_speaking(service, voice)
        if len(speaking) == 1:
            return speaking[0]
        if not speaking:
            voices = "; ".join(f"{w.base_name}: {', '.join(base_voices(w))}" for w in service.bases_of(SPEECH_TASK)
                               if w.loaded is not None)
            raise _no_voice(service, voice, f"a voice of a base ({voices})")
    return service.resolve(SPEECH_TASK, [], model, OPENAI_SPEECH_MODELS)[0]


def _speakers(model: Any) -> list[str]:
    """A coqui VITS base's speaker names (none for a single-speaker base)."""
    manager = getattr(model, "speaker_manager", None)
    return sorted(getattr(manager, "name_to_id", None) or {})


def _voice_name(base_name: str) -> str:
    """What a one-voice base's voice is called: its name's last part, without
    a ``piper:``-like prefix or a model file's suffix (``piper:en_US-joe-medium``
    -> ``en_US-joe-medium``, ``/voices/kauko`` -> ``kauko``,
    ``piper:kauko-voice/voice.onnx`` -> ``kauko-voice``)."""
    last = PurePosixPath(base_name.replace("\\", "/").rsplit(":", 1)[-1].rstrip("/"))
    if last.suffix in (".onnx", ".pth"):  # a model file: by its name, or its folder's when the name says nothing
        last = last.parent if last.stem in ("voice", "model") else PurePosixPath(last.stem)
    return last.name or base_name


def base_voices(worker: BaseWorker) -> list[str]:
    """The voices a served base speaks: its speakers, or its one voice."""
    if worker.loaded is None:
        return []
    return _speakers(worker.loaded.base.model) or [_voice_name(worker.base_name)]


def _voice_list(service: Service) -> list[dict[str, str]]:
    """Each voice-clone adapter loaded or loading, then each voice base's own voices, once each."""
    listed: dict[str, str] = {}
    found, loading = service.adapters, service.loading()  # a rescan replaces the dict, never changes it
    for worker in service.bases_of(SPEECH_TASK):
        loaded = worker.loaded.adapters if worker.loaded else {}
        for name, entry in sorted(found.items()):
            if (entry.task, entry.base) == (SPEECH_TASK, worker.base_name) and (name in loaded or name in loading):
                listed.setdefault(name, f"{name} (cloned on {worker.base_name})")
    for worker in service.bases_of(SPEECH_TASK):
        for voice in base_voices(worker):
            listed.setdefault(voice, f"{voice} (base {worker.base_name})")
    return [{"id": voice, "name": name} for voice, name in listed.items()]


def _speakers_of_base(service: Service, adapters: list[tuple[str, float]]) -> list[str]:
    entry = service.adapters.get(adapters[0][0])
    worker = service.workers.get((SPEECH_TASK, entry.base)) if entry else None
    return _speakers(worker.loaded.base.model) if worker and worker.loaded else []


async def _image_request(request: Request, uploads: Path) -> dict[str, Any]:
    """An image request's fields, multipart (``image`` file) or JSON (``image``
    in base64); the image is checked and written under ``uploads`` with a
    name of ours, never the client's."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        image = form.get("image")
        if image is None or isinstance(image, str):
            raise RequestError("send the image as a file field named 'image'", "image")
        data = await image.read()
        for name in ("model", "adapters", "question"):
            if form.get(name) is not None and not isinstance(form.get(name), str):
                raise RequestError(f"{name} must be a text field, not a file", name)
        fields = {"model": form.get("model") or None, "adapters": adapters_from_form(form.get("adapters")),
                  "question": form.get("question")}
    elif kind.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise RequestError("the body is not valid JSON", None) from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object", None)
        data = image_from_base64(body.get("image"))
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise RequestError("model must be a text", "model")
        fields = {"model": model, "adapters": adapters_from_form(json.dumps(body.get("adapters") or [])),
                  "question": body.get("question")}
    else:
        raise RequestError("send multipart/form-data with an 'image' file, or JSON with 'image' in base64", None, 415)
    fields["path"] = await _saved_image(data, uploads, "image")
    return fields


async def _saved_image(data: bytes, uploads: Path, param: str) -> Path:
    """``data`` checked as an image and written under ``uploads`` by a name of
    ours, never the client's; refusals name the request field ``param``."""
    try:
        suffix = await run_in_threadpool(image_suffix, data)
    except RequestError as exc:
        raise RequestError(exc.message, param, exc.status) from None
    path = uploads / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    try:
        from lorakit.data.images import check_image

        await run_in_threadpool(check_image, path)
    except LorakitError as exc:
        path.unlink(missing_ok=True)
        raise RequestError(f"image: {str(exc).replace(str(path), 'the image')}", param) from None
    return path


def _without_flag(message: str) -> str:
    """A task's message written for the command line, without the flag it
    starts by blaming (``--text: ...``): the request's field is named in
    ``param`` instead."""
    return re.sub(r"^--[\w.-]+: ", "", message)


def _names_a_file(text: str) -> bool:
    if not text.strip():  # "" is the working folder to pathlib, and no file to a client
        return False
    try:
        return Path(text).expanduser().exists()
    except (OSError, ValueError):  # too long a name, a NUL byte: not a path that exists
        return False


def _model_list(service: Service) -> list[dict[str, Any]]:
    """OpenAI's model objects: each base, then each adapter with its manifest.
    Ids are unique, as OpenAI's clients expect: a base whose name another
    task's base or an adapter also has is listed as ``TASK/BASE``, which
    requests take as ``model`` too."""
    names = [w.base_name for w in service.workers.values()] + list(service.adapters)
    listed = [{"id": w.base_name if names.count(w.base_name) == 1 else f"{w.task_name}/{w.base_name}",
               "object": "model", "owned_by": "lorakit", "kind": "base", "task": w.task_name,
               "ready": w.loaded is not None, "voices": base_voices(w) if w.task_name == SPEECH_TASK else []}
              for w in service.workers.values()]
    loading = service.loading()
    for entry in service.adapters.values():
        worker = service.workers.get((entry.task, entry.base))
        loaded = worker is not None and worker.loaded is not None and entry.name in worker.loaded.adapters
        listed.append({"id": entry.name, "object": "model", "owned_by": "lorakit", "kind": "adapter",
                       "task": entry.task, "base": entry.base, "loaded": loaded, "loading": entry.name in loading,
                       "manifest": json.loads(entry.manifest.to_json())})
    return listed


def _run_summary(entry: Any) -> dict[str, Any]:
    report = entry.run_dir / "report.json"
    try:
        metrics = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
    except (OSError, ValueError):
        metrics = {}
    return {"name": entry.name, "task": entry.task, "base": entry.base, "report": metrics}


def _generation_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Whether the length cap cut the text, and its token counts, as the
    task's record says them (a plugin's caption task may say neither)."""
    return {key: record[key] for key in ("finish_reason", "usage") if key in record}


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """A prediction record for JSON: audio as base64 wav, arrays as lists."""
    out = {}
    for key, value in record.items():
        if key == "audio" and "sample_rate" in record:
            out[key] = base64.b64encode(encode(value, int(record["sample_rate"]), "wav")[0]).decode()
        else:
            out[key] = plain(value)
    return out


#: Type names pydantic puts in an error's location after a field whose type is a union.
_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "list[str]", "list[int]", "list[float]"}


def _error(message: str, param: str | None, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}},
                        status_code=status, headers=headers)


def _errors(app: FastAPI) -> None:
    """Every failure as one JSON error: the client's (4xx, naming the field)
    or the server's (5xx, logged with its traceback; the server goes on)."""

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.message, exc.param, exc.status, {"Retry-After": "1"} if exc.status == 503 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":  # its loc is a character position, not a field
            at = first.get("loc", ("body", "?"))[-1]
            return _error(f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'invalid')} at "
                          f"character {at})", None, 400)
        # A union's member type follows the field in loc ("voice", "str"): the field is the param.
        where = [str(part) for part in first.get("loc", ()) if part != "body" and str(part) not in _TYPE_TAGS]
        param = ".".join(where) or None
        hint = ("; send a JSON object with Content-Type: application/json" if param is None
                and first.get("type") in ("dict_type", "model_attributes_type") else "")
        return _error(f"{param or 'body'}: {first.get('msg', 'invalid')}{hint}", param, 400)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=CLIENT_GONE)  # it left mid-upload: no one to answer, nothing failed

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (no such route, a method a route does not take) in OpenAI's shape."""
        method, path = request.method, request.url.path
        if exc.status_code == 404:
            message = f"no route {method} {path}; the routes are listed at /docs"
        elif exc.status_code == 405:
            allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "another method")
            message = f"{method} is not allowed on {path}; it takes {allowed}"
        else:
            message = f"the request could not be read: {exc.detail}"
        return _error(message, None, exc.status_code, exc.headers)

    @app.exception_handler(Stopped)
    async def stopping(request: Request, exc: Stopped) -> JSONResponse:
        return _error(str(exc), None, 503)

    @app.exception_handler(LorakitError)
    async def lorakit_error(request: Request, exc: LorakitError) -> JSONResponse:
        return _error(str(exc), None, 400)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        traceback.print_exception(exc)
        return _error(f"the server failed on this request ({type(exc).__name__}: {exc})", None, 500)
