"""OpenAI's chat completions over the image models: a client of OpenAI's
chat API sends a picture and gets its caption, or asks about it and gets
the VQA answer.

BLIP is not a chat model: it looks at one image and reads one text. The
image is the last user message's (one only), or, for a follow-up question
without one, the latest earlier in the conversation; the text is the last
user message's, which a VQA model answers and a caption model does not need
(it captions). System and assistant messages are read for their images only.
Images travel inline as ``data:`` URLs (what these clients send for an
uploaded file); the server fetches no URL.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
import uuid
from typing import Any, Callable, Iterator

from lorakit.serving.service import RequestError, Service
from lorakit.serving.speech import sse_event

#: The tasks chat answers with, and the record field each answers in.
ANSWER_FIELDS = {"caption": "caption", "vqa": "answer"}
#: The longest question a VQA model is asked.
MAX_QUESTION = 1000
#: The option of each task that caps an answer's length, in tokens.
LENGTH_OPTIONS = {"caption": "max_new_tokens", "vqa": "max_answer_tokens"}


@dataclasses.dataclass
class ChatInput:
    """What a conversation gives BLIP: the image's bytes and the last user
    text, each with the request field it came from (named in errors)."""

    image: bytes
    image_param: str
    text: str
    text_param: str


def chat_target(service: Service, list_models: Callable[[Service], list[dict[str, Any]]], model: str,
                adapters: list[tuple[str, float]]) -> tuple[str, list[tuple[str, float]], str | None]:
    """The task, adapters and base a chat request names: ``model`` is an
    image adapter or base as ``/v1/models`` (``list_models``) lists it
    (``caption-a``, ``vqa/demo``), or a plain base name one image task
    serves; with ``adapters`` (lorakit's mix), their task, and ``model``
    their base."""
    # An adapter rewritten or removed since the last look? (Not waiting for
    # the loads: resolving the request waits for its own base's.)
    service.refresh(wait=False)
    listed = list_models(service)
    if adapters:
        name = adapters[0][0]
        if name not in service.adapters:
            service.refresh(force=True, wait=False)  # trained since the last look?
        entry = service.adapters.get(name)
        if entry is None:
            raise RequestError(f"no adapter named {name!r}; served image adapters: "
                               f"{', '.join(_chat_ids(list_models(service), 'adapter')) or 'none'}", "adapters", 404)
        _check_image_task(entry.task, f"adapter {name!r}", listed, "adapters")
        named = _listed(listed, model)
        if named is not None and named["task"] != entry.task:  # model: vqa/demo, adapters: a caption adapter
            raise RequestError(f"model {model!r} is a {named['task']} {named['kind']} and adapter {name!r} a "
                               f"{entry.task} one: name a {entry.task} model, or that task's adapters", "model")
        return entry.task, adapters, model
    found = _listed(listed, model)
    if found is None and model not in {w.base_name for w in service.workers.values()}:
        service.refresh(force=True, wait=False)  # trained since the last look?
        listed = list_models(service)
        found = _listed(listed, model)
    if found is not None:
        _check_image_task(found["task"], f"model {model!r}", listed, "model")
        if found["kind"] == "adapter":
            return found["task"], [(model, 1.0)], None
        return found["task"], [], model
    tasks = sorted({w.task_name for w in service.workers.values() if w.base_name == model} & set(ANSWER_FIELDS))
    if len(tasks) == 1:
        return tasks[0], [], model
    if tasks:
        raise RequestError(f"{model!r} is served for {' and '.join(tasks)}: name "
                           f"{' or '.join(f'{t}/{model}' for t in tasks)}", "model")
    raise RequestError(f"no image model named {model!r}; chat takes: {', '.join(_chat_ids(listed)) or 'none'} "
                       "(serve caption or vqa runs, or --base caption=BASE)", "model", 404)


def _listed(listed: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    return next((m for m in listed if m["id"] == model), None)


def _chat_ids(listed: list[dict[str, Any]], kind: str | None = None) -> list[str]:
    return [m["id"] for m in listed if m["task"] in ANSWER_FIELDS and kind in (None, m["kind"])]


def _check_image_task(task: str, what: str, listed: list[dict[str, Any]], param: str) -> None:
    if task not in ANSWER_FIELDS:
        raise RequestError(f"{what} is a {task} model; chat answers about images with caption and vqa models: "
                           f"{', '.join(_chat_ids(listed)) or 'none served'}", param)


def chat_input(messages: list[Any]) -> ChatInput:
    """The image and text BLIP is given for ``messages`` (OpenAI's shape:
    ``content`` a text, or parts of type ``text`` and ``image_url``)."""
    last_user = None
    images: list[tuple[int, list[tuple[str, str]]]] = []  # (message, [(param, url)])
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError("each message must be an object with a role and content", f"messages.{i}")
        texts, urls = _parts(message.get("content"), f"messages.{i}.content")
        images.append((i, urls))
        if message["role"] == "user":
            last_user = (i, texts, urls)
    if last_user is None:
        raise RequestError("no user message: send the image and question as the user's message", "messages")
    index, texts, urls = last_user
    if len(urls) > 1:
        raise RequestError("the last user message holds several images; BLIP looks at one at a time",
                           f"messages.{index}.content")
    if not urls:  # a follow-up question: about the latest image before it
        urls = next((found for i, found in reversed(images[:index]) if found), [])[-1:]
    if not urls:
        raise RequestError("no image in the conversation: add one to the user's message as an image_url part "
                           "(a data: URL, as OpenAI's clients send an uploaded file)", f"messages.{index}.content")
    param, url = urls[0]
    return ChatInput(_image_bytes(url, param), param, "\n".join(texts).strip(), f"messages.{index}.content")


def _parts(content: Any, param: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A message content's texts and image URLs (each with its field)."""
    if content is None or isinstance(content, str):
        return ([content] if content else []), []
    if not isinstance(content, list):
        raise RequestError("content must be a text or a list of parts", param)
    texts, urls = [], []
    for j, part in enumerate(content):
        where = f"{param}.{j}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):  # a number, a list: it said to send text parts
                raise RequestError("a text part's text must be a string", f"{where}.text")
            texts.append(part["text"])
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise RequestError("image_url must hold the image's url", f"{where}.image_url")
            urls.append((f"{where}.image_url", url))
        else:
            raise RequestError(f"a part of type {kind!r}: send text and image_url parts", where)
    return texts, urls


def _image_bytes(url: str, param: str) -> bytes:
    """The image a ``data:`` URL holds."""
    if url.startswith(("http://", "https://")):
        raise RequestError("the server fetches no URLs: send the image itself as a data: URL "
                           "(data:image/png;base64,...)", param)
    head, comma, data = url.partition(",")
    if not (url.startswith("data:") and comma and head.endswith(";base64")):
        raise RequestError("the image must be a data: URL in base64 (data:image/png;base64,...)", param)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("the image's data: URL is not valid base64", param) from None


def vqa_question(chat: ChatInput) -> str:
    """The last user text as a VQA question, refused when blank or too long."""
    if not chat.text or len(chat.text) > MAX_QUESTION:
        raise RequestError(f"ask a question about the image in the user's message (1 to {MAX_QUESTION} "
                           "characters): a VQA model answers questions", chat.text_param)
    return chat.text


def completion(model: str, answer: dict[str, Any], field: str, provenance: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` object answering with the prediction
    record ``answer`` (its text in ``field``, its ``usage`` and
    ``finish_reason``); the base and adapters that answered ride along as on
    the other routes."""
    return {"id": _completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer[field], "refusal": None},
                         "logprobs": None, "finish_reason": answer["finish_reason"]}],
            "usage": answer["usage"], **provenance}


def completion_chunks(model: str, answer: dict[str, Any], field: str, provenance: dict[str, Any],
                      include_usage: bool = False) -> Iterator[bytes]:
    """The same answer as OpenAI's streamed ``chat.completion.chunk`` events:
    the role, the text, the finish, with ``include_usage`` a last chunk of
    no choices carrying the token counts (the others ``usage: null``), then
    ``[DONE]`` (BLIP generates the whole answer before the first chunk; it
    is short)."""
    first = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    if include_usage:
        first["usage"] = None
    deltas = [({"role": "assistant", "content": ""}, None), ({"content": answer[field]}, None),
              ({}, answer["finish_reason"])]
    for delta, finish in deltas:
        chunk = {**first, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        yield sse_event({**chunk, **provenance} if finish else chunk)
    if include_usage:
        yield sse_event({**first, "choices": [], "usage": answer["usage"]})
    yield b"data: [DONE]\n\n"


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def answer_length(service: Service, task: str, adapters: list[tuple[str, float]], limit: int | None) -> dict[str, int]:
    """OpenAI's ``max_tokens`` as the task's option overrides: the smaller of
    it and the length the first adapter (or the task) is set to, so that it
    only ever shortens an answer."""
    if limit is None:
        return {}
    option = LENGTH_OPTIONS[task]
    return {option: min(limit, int(service.saved_option(task, adapters, option)))}
