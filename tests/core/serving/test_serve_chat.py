"""OpenAI's chat completions over the image models, through OpenAI's own
client: an image and a question in, the caption or the VQA answer out, the
same as the image routes give for the same image."""

import base64
import json
from pathlib import Path

import httpx
import pytest

from serving_support import png_bytes

openai = pytest.importorskip("openai")

#: A VQA sample image: the demo bases and the test adapters each say something else of it.
ITEM = (Path(__file__).parents[3] / "samples" / "vqa" / "inspection" / "item_0001.png").read_bytes()


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def asking(text, image=None):
    """A user message: ``text`` and perhaps an image, as OpenAI's clients send an upload."""
    parts = [{"type": "text", "text": text}]
    if image is not None:
        parts.append({"type": "image_url", "image_url": {"url": data_url(image), "detail": "auto"}})
    return {"role": "user", "content": parts}


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


def vqa_tokens(text):
    """The demo VQA base's tokens of ``text``, [CLS] and [SEP] included."""
    from transformers import AutoTokenizer

    from lorakit_vqa.loading import DEMO_BASE

    return AutoTokenizer.from_pretrained(DEMO_BASE)(text)["input_ids"]


def caption_of(live, image, adapters):
    response = httpx.post(f"{live.url}/v1/captions", timeout=120, files={"image": ("p.png", image, "image/png")},
                          data={"adapters": json.dumps(adapters)})
    return response.json()["caption"]


def answer_of(live, image, question):
    response = httpx.post(f"{live.url}/v1/vqa", timeout=120, files={"image": ("p.png", image, "image/png")},
                          data={"question": question})
    return response.json()["answer"]


def test_a_caption_adapter_chosen_as_the_model_captions_the_image(live, client):
    completion = client.chat.completions.create(model="caption-a", messages=[asking("Describe this.", ITEM)])
    said = completion.choices[0].message.content
    assert said == caption_of(live, ITEM, [{"name": "caption-a"}]) != caption_of(live, ITEM, [])
    assert completion.model == "caption-a"
    # This adapter (random weights) rambles: the task's length cap (30 tokens) cuts it.
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 30
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 30
    extra = completion.model_extra
    assert extra["base"] == "demo" and [a["name"] for a in extra["adapters"]] == ["caption-a"]
    other = client.chat.completions.create(model="styles/caption-b", messages=[asking("", ITEM)])
    assert other.choices[0].message.content == caption_of(live, ITEM, [{"name": "styles/caption-b"}]) != said


def test_a_vqa_model_answers_the_question_and_a_follow_up_about_the_same_image(live, client):
    first = client.chat.completions.create(model="vqa/demo", messages=[asking("What color is the item?", ITEM)])
    assert first.choices[0].message.content == answer_of(live, ITEM, "What color is the item?")
    # The demo base ends its answers: their tokens and the end token.
    answer_tokens = len(vqa_tokens(first.choices[0].message.content)) - 2
    assert first.choices[0].finish_reason == "stop" and first.usage.completion_tokens == answer_tokens + 1
    conversation = [
        {"role": "system", "content": "You answer questions about pictures."},
        asking("What color is the item?", ITEM),
        {"role": "assistant", "content": first.choices[0].message.content},
        asking("What shape is it?"),
    ]
    follow_up = client.chat.completions.create(model="vqa/demo", messages=conversation)
    said = follow_up.choices[0].message.content
    assert said == answer_of(live, ITEM, "What shape is it?") != first.choices[0].message.content
    # The prompt counted is the image and the last question, not the whole conversation.
    longer = len(vqa_tokens("What shape is it?")) - len(vqa_tokens("What color is the item?"))
    assert follow_up.usage.prompt_tokens == first.usage.prompt_tokens + longer
    # The latest image is the one asked about.
    conversation[3:3] = [asking("And this one?", png_bytes((200, 40, 40))), {"role": "assistant", "content": "?"}]
    later = client.chat.completions.create(model="vqa/demo", messages=conversation)
    assert later.choices[0].message.content == answer_of(live, png_bytes((200, 40, 40)), "What shape is it?") != said


def test_a_streamed_answer_is_the_same_answer_in_chunks(live, client):
    stream = client.chat.completions.create(model="caption-a", messages=[asking("What is this?", ITEM)],
                                            stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == caption_of(live, ITEM, [{"name": "caption-a"}])
    whole = client.chat.completions.create(model="caption-a", messages=[asking("What is this?", ITEM)])
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert len({chunk.id for chunk in chunks}) == 1 and all(chunk.usage is None for chunk in chunks)


def test_a_stream_asked_for_usage_ends_with_the_token_counts(client):
    question = [asking("What is damaged?", ITEM)]
    stream = client.chat.completions.create(model="vqa/demo", messages=question, stream=True,
                                            stream_options={"include_usage": True})
    *answer, last = list(stream)
    whole = client.chat.completions.create(model="vqa/demo", messages=question)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in answer) == whole.choices[0].message.content
    assert last.choices == [] and last.usage == whole.usage and all(chunk.usage is None for chunk in answer)
    assert answer[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "stop"


def test_the_image_routes_say_the_same_tokens_and_finish_reason_as_chat(live, client):
    caption = httpx.post(f"{live.url}/v1/captions", timeout=120, files={"image": ("p.png", ITEM, "image/png")},
                         data={"adapters": json.dumps([{"name": "caption-a"}])}).json()
    chat = client.chat.completions.create(model="caption-a", messages=[asking("Describe this.", ITEM)])
    assert caption["usage"] == chat.usage.model_dump(exclude_none=True) and caption["finish_reason"] == chat.choices[0].finish_reason
    answer = httpx.post(f"{live.url}/v1/vqa", timeout=120, files={"image": ("p.png", ITEM, "image/png")},
                        data={"question": "What is damaged?"}).json()
    chat = client.chat.completions.create(model="vqa/demo", messages=[asking("What is damaged?", ITEM)])
    assert answer["usage"] == chat.usage.model_dump(exclude_none=True) and answer["finish_reason"] == chat.choices[0].finish_reason
    assert answer["usage"]["completion_tokens"] == len(vqa_tokens(answer["answer"])) - 1  # its tokens and the end


def test_a_mix_of_adapters_rides_in_extra_body(live, client):
    mix = [{"name": "caption-a", "weight": 0.5}, {"name": "styles/caption-b", "weight": 0.5}]
    completion = client.chat.completions.create(model="caption/demo", messages=[asking("Caption it.", ITEM)],
                                                extra_body={"adapters": mix})
    said = completion.choices[0].message.content
    assert said == caption_of(live, ITEM, mix) != caption_of(live, ITEM, [{"name": "caption-a"}])
    assert [a["weight"] for a in completion.model_extra["adapters"]] == [0.5, 0.5]


@pytest.mark.parametrize("model, messages, status, param, text", [
    ("caption-a", [{"role": "user", "content": "Describe a cat."}], 400, "messages.0.content", "no image"),
    ("caption-a", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}],
     400, "messages.0.content.0.image_url", "fetches no URLs"),
    ("caption-a", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%"}}]}],
     400, "messages.0.content.0.image_url", "not valid base64"),
    ("caption-a", [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(b"not an image").decode()}}]}],
     400, "messages.0.content.0.image_url", "not an image"),
    ("caption-a", [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], 400,
     "messages.0.content.0", "input_audio"),
    ("caption-a", [{"role": "assistant", "content": "hello"}], 400, "messages", "no user message"),
    ("caption-a", [{"role": "user", "content": [{"type": "text", "text": 5}]}], 400, "messages.0.content.0.text",
     "a text part's text must be a string"),
    ("vqa/demo", [asking("  ", png_bytes())], 400, "messages.0.content", "ask a question"),
    ("kauko", [asking("Hi", png_bytes())], 400, "model", "voice-clone model"),
    ("demo", [asking("Hi", png_bytes())], 400, "model", "caption/demo or vqa/demo"),
    ("nobody", [asking("Hi", png_bytes())], 404, "model", "caption-a"),
])
def test_what_blip_cannot_answer_is_a_400_naming_the_field(client, model, messages, status, param, text):
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=model, messages=messages)
    assert raised.value.status_code == status
    error = raised.value.body
    assert error["param"] == param and text in error["message"], error


def test_a_model_of_one_task_with_adapters_of_another_is_named_as_such(client):
    """It said the caption adapter "was trained on base 'demo', not 'vqa/demo'"."""
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="vqa/demo", messages=[asking("Is it red?", png_bytes())],
                                       extra_body={"adapters": [{"name": "caption-a"}]})
    error = raised.value.body
    assert error["param"] == "model", error
    assert "model 'vqa/demo' is a vqa base and adapter 'caption-a' a caption one" in error["message"], error


def test_two_images_in_one_message_and_several_answers_are_refused(client):
    two = {"role": "user", "content": [*asking("Which?", png_bytes())["content"],
                                       *asking("", png_bytes((0, 0, 0)))["content"][1:]]}
    with pytest.raises(openai.BadRequestError, match="several images"):
        client.chat.completions.create(model="caption-a", messages=[two])
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="caption-a", messages=[asking("Hi", png_bytes())], n=2)
    assert raised.value.body["param"] == "n"


@pytest.fixture
def rambling_vqa(served, service):
    """A VQA adapter served while the test runs whose answers run to the task's 12-token length (random weights)."""
    import shutil

    from lorakit.testing import random_adapter

    random_adapter("vqa", "demo", served / "rambling", 8, scale=1.0)
    yield "rambling"
    shutil.rmtree(served / "rambling")
    service.refresh(force=True)


@pytest.mark.parametrize("limit", [{"max_tokens": 2}, {"max_completion_tokens": 2}])
def test_max_tokens_cuts_a_caption_short(client, limit):
    _cut_short(client, "caption-a", "Describe this.", limit)


def test_max_tokens_cuts_a_vqa_answer_short(client, rambling_vqa):
    _cut_short(client, rambling_vqa, "What is the damage?", {"max_tokens": 3})


def _cut_short(client, model, question, limit):
    """Greedy decoding cut after the cap: the first tokens of the whole answer."""
    whole = client.chat.completions.create(model=model, messages=[asking(question, ITEM)]).choices[0].message.content
    cut = client.chat.completions.create(model=model, messages=[asking(question, ITEM)], **limit)
    said = cut.choices[0].message.content
    assert said and len(said.split()) <= next(iter(limit.values())) < len(whole.split()), (said, whole)
    assert whole.startswith(said), (said, whole)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == next(iter(limit.values()))
    roomy = client.chat.completions.create(model=model, messages=[asking(question, ITEM)], max_tokens=500)
    assert roomy.choices[0].message.content == whole  # a cap above the adapter's own length changes nothing


def test_a_max_tokens_below_one_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="caption-a", messages=[asking("Hi", ITEM)], max_tokens=0)
    assert raised.value.body["param"] == "max_tokens"


def test_stream_options_without_a_stream_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="caption-a", messages=[asking("Hi", ITEM)],
                                       stream_options={"include_usage": True})
    error = raised.value.body
    assert error["param"] == "stream_options" and "only allowed when stream is true" in error["message"], error
