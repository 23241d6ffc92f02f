"""The bodies the endpoints accept, validated before anything is queued.

Field limits keep one request from holding the worker for long; every
refusal names its field (``RequestError.param``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from lorakit.serving.service import RequestError

#: The longest text a speech request may hold (OpenAI's own limit).
MAX_SPEECH_CHARACTERS = 4096
#: Inputs of one generic prediction request, and the longest of them (a
#: text spoken in one piece holds its worker for its whole length).
MAX_INPUTS = 16
MAX_INPUT_CHARACTERS = MAX_SPEECH_CHARACTERS


class AdapterWeight(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    weight: float = Field(1.0, ge=-8.0, le=8.0, allow_inf_nan=False)


class Composed(BaseModel):
    """Fields every model request shares: the base and the adapters to mix."""

    model: str | None = Field(None, max_length=1000)
    adapters: list[AdapterWeight] | None = Field(None, max_length=16)

    @field_validator("adapters")
    @classmethod
    def _each_once(cls, adapters: list[AdapterWeight] | None) -> list[AdapterWeight] | None:
        names = [a.name for a in adapters or []]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise ValueError(f"adapter {twice!r} is named twice; name it once, with the weight it should have")
        return adapters

    def mix(self) -> list[tuple[str, float]]:
        return [(a.name, a.weight) for a in self.adapters or []]


class VoiceId(BaseModel):
    """OpenAI's custom voice reference: a cloned voice is one."""

    id: str


class SpeechRequest(Composed):
    """OpenAI's ``/v1/audio/speech`` body; ``adapters`` is lorakit's addition."""

    model: str = Field(max_length=1000)
    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARACTERS)
    voice: str | VoiceId
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0, allow_inf_nan=False)
    instructions: str | None = Field(None, max_length=MAX_SPEECH_CHARACTERS)  # VITS has no way to follow it
    #: ``audio``: the format's bytes; ``sse``: OpenAI's speech.audio.delta / .done events.
    stream_format: Literal["audio", "sse"] = "audio"

    @field_validator("voice")
    @classmethod
    def _voice_name(cls, value: str | VoiceId) -> str:
        """A voice by name, or as OpenAI's custom voice object ``{"id": name}``."""
        name = value.id if isinstance(value, VoiceId) else value
        if not 1 <= len(name) <= 300:
            raise ValueError("voice must name a voice in 1 to 300 characters")
        return name

    @field_validator("input")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input is blank: send the text to speak")
        return value


class MusicRequest(Composed):
    prompt: str = Field(min_length=1, max_length=1000)
    seconds: float | None = Field(None, gt=0, le=30, allow_inf_nan=False)
    response_format: Literal["wav", "flac", "mp3", "opus"] = "wav"


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(Composed):
    """OpenAI's ``/v1/chat/completions`` body, as far as BLIP can follow it.
    ``max_completion_tokens`` (or the older ``max_tokens``) caps the answer;
    ``stream_options.include_usage`` adds the token counts to a stream;
    sampling fields (``temperature``...) are accepted and ignored: the model
    decodes as its adapter was set to."""

    model: str = Field(min_length=1, max_length=1000)
    messages: list[Any] = Field(min_length=1, max_length=256)
    stream: StrictBool = False  # "yes" is a mistake, not true
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)  # one answer: BLIP's decoding gives one
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    @field_validator("stream_options")
    @classmethod
    def _only_when_streaming(cls, value: StreamOptions | None, info: Any) -> StreamOptions | None:
        # As OpenAI refuses it: the usage of an answer that is not streamed is in the answer already.
        if value is not None and not info.data.get("stream"):
            raise ValueError("stream_options is only allowed when stream is true")
        return value

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def streams_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class PredictRequest(Composed):
    """lorakit's own route: a field it does not take is refused, not ignored
    (``options`` looked like it set task options and changed nothing)."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[Annotated[str, Field(max_length=MAX_INPUT_CHARACTERS)]] = Field(min_length=1, max_length=MAX_INPUTS)


def adapters_from_form(text: str | None) -> list[tuple[str, float]]:
    """The ``adapters`` form field of a multipart request: JSON as in a JSON body."""
    if not text:
        return []
    try:
        return Composed(adapters=json.loads(text)).mix()
    except ValidationError as exc:
        problem = exc.errors()[0]
        if problem["type"] == "value_error":  # one of ours (an adapter named twice): said as it is
            raise RequestError(str(problem.get("ctx", {}).get("error", problem["msg"])), "adapters") from None
        reason = problem["msg"]
    except ValueError as exc:  # not JSON
        reason = str(exc).splitlines()[0]
    raise RequestError(f'adapters must be a JSON list like [{{"name": "kauko", "weight": 0.7}}] ({reason})',
                       "adapters")


def image_from_base64(text: Any) -> bytes:
    if not isinstance(text, str) or not text:
        raise RequestError("image must be the image file's bytes in base64", "image")
    if text.startswith(("http://", "https://", "file:")):
        raise RequestError("the server fetches no URLs: send the image itself in base64", "image")
    if text.startswith("data:") and "," not in text:
        raise RequestError("image is a data: URL without its data (data:image/png;base64,...)", "image")
    try:
        return base64.b64decode(text.split(",", 1)[1] if text.startswith("data:") else text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("image is not valid base64", "image") from None


def image_suffix(data: bytes) -> str:
    """The suffix of an image's format, refusing what is not a readable image."""
    from PIL import UnidentifiedImageError

    from lorakit.data.images import IMAGE_FORMATS, image_format

    if not data:
        raise RequestError("image is empty", "image")
    try:
        kind = image_format(data, verify=True)
    except UnidentifiedImageError:
        raise RequestError("image is not an image Pillow can read", "image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise RequestError(f"image is not an image Pillow can read ({exc})", "image") from None
    if kind not in IMAGE_FORMATS:
        raise RequestError(f"image is a {kind} file; send PNG, JPEG, WebP, BMP, TIFF, GIF, AVIF, HEIC or DICOM",
                           "image")
    return IMAGE_FORMATS[kind]

