"""The HTTP contract beyond speech: images, music, what is served, limits,
bad requests, adapters added while running, files of runs."""

import base64
import io
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf
import torch

from lorakit import runs
from serving_support import png_bytes, probe, rewrite_adapter


def post(live, route, **kwargs):
    return httpx.post(f"{live.url}{route}", timeout=120, **kwargs)


def error_of(response, status, param):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    return error["message"]


def test_caption_multipart_and_json_carry_fingerprints(live, service):
    image = png_bytes()
    upload = post(live, "/v1/captions", files={"image": ("photo.png", image, "image/png")},
                  data={"adapters": json.dumps([{"name": "caption-a", "weight": 0.5}])}).json()
    as_json = post(live, "/v1/captions", json={"image": base64.b64encode(image).decode(),
                                                "adapters": [{"name": "caption-a", "weight": 0.5}]}).json()
    assert upload == as_json
    assert upload["caption"] and upload["base"] == "demo"
    assert upload["base_fingerprint"] == service.workers[("caption", "demo")].loaded.fingerprint
    assert upload["adapters"][0]["name"] == "caption-a" and upload["adapters"][0]["weight"] == 0.5
    assert upload["adapters"][0]["fingerprint"].startswith("sha256:")


@pytest.mark.parametrize("fmt", ["TIFF", "GIF", "AVIF", "HEIF"])
def test_a_photo_in_another_format_is_captioned_as_its_png(live, fmt):
    from PIL import Image

    from lorakit.data.images import enable_heif

    assert enable_heif()  # lorakit[caption] brings pillow-heif, which also writes HEIC
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png_bytes())).save(buffer, format=fmt)
    other = post(live, "/v1/captions", files={"image": ("photo", buffer.getvalue(), "image/*")}).json()
    assert other["caption"] == post(live, "/v1/captions", files={"image": ("p.png", png_bytes(), "image/png")}).json()["caption"]


def test_a_multi_picture_jpeg_is_captioned_as_its_first_picture(live):
    # Many phones and cameras write MPO: a JPEG with more pictures after the first.
    from PIL import Image

    first = Image.open(io.BytesIO(png_bytes()))
    mpo = io.BytesIO()
    first.save(mpo, format="MPO", save_all=True, append_images=[first.transpose(Image.Transpose.ROTATE_180)])
    assert Image.open(io.BytesIO(mpo.getvalue())).format == "MPO"
    as_png = io.BytesIO()
    Image.open(io.BytesIO(mpo.getvalue())).convert("RGB").save(as_png, format="PNG")
    upload = post(live, "/v1/captions", files={"image": ("IMG_0001.JPG", mpo.getvalue(), "image/jpeg")})
    assert upload.status_code == 200, upload.text
    assert upload.json() == post(live, "/v1/captions", files={"image": ("p.png", as_png.getvalue(), "image/png")}).json()


def test_a_dicom_scan_is_answered_as_the_picture_a_viewer_shows(live):
    """An X-ray or CT uploaded as .dcm (told by its bytes, whatever its name)
    gets the answers its windowed picture gets as a PNG."""
    pydicom = pytest.importorskip("pydicom")  # lorakit[caption] brings it
    from lorakit.api import open_rgb

    scan = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    picture = io.BytesIO()
    open_rgb(scan).image.save(picture, format="PNG")
    for route, form in (("/v1/captions", {}), ("/v1/vqa", {"question": "what is shown?"})):
        as_dicom = post(live, route, files={"image": ("IM000001", scan.read_bytes(), "application/dicom")}, data=form)
        as_png = post(live, route, files={"image": ("scan.png", picture.getvalue(), "image/png")}, data=form)
        assert as_dicom.status_code == 200, as_dicom.text
        assert as_dicom.json() == as_png.json()
    report = (Path(pydicom.__file__).parent / "data" / "test_files" / "reportsi.dcm").read_bytes()
    refused = post(live, "/v1/captions", files={"image": ("report.dcm", report, "application/dicom")})
    assert "without an image (SR" in error_of(refused, 400, "image")


def test_vqa_answers_and_music_plays(live, tmp_path):
    answer = post(live, "/v1/vqa", files={"image": ("p.png", png_bytes(), "image/png")},
                  data={"question": "what color is it?"}).json()
    (tmp_path / "p.png").write_bytes(png_bytes())
    direct = runs.predict("vqa", [str(tmp_path / "p.png")], input_flags={"question": ["what color is it?"]})[0]
    assert answer["question"] == "what color is it?" and answer["answer"] == direct["answer"] != ""
    music = post(live, "/v1/music", json={"prompt": "calm piano", "seconds": 1.0}).json()
    audio, rate = sf.read(io.BytesIO(base64.b64decode(music["audio"])))
    assert music["media_type"] == "audio/wav" and 0.8 < len(audio) / rate < 1.3


def test_music_mixes_play_another_clip_the_same_each_time(live):
    def play(adapters):
        body = {"prompt": "calm piano", "seconds": 1.0, "adapters": adapters}
        return post(live, "/v1/music", json=body).json()

    base = play([])
    mix = play([{"name": "tune-a", "weight": 0.7}, {"name": "tune-b", "weight": 0.5}])
    assert [a["name"] for a in mix["adapters"]] == ["tune-a", "tune-b"]
    assert mix["audio"] != base["audio"]
    assert play([{"name": "tune-a", "weight": 0.7}, {"name": "tune-b", "weight": 0.5}])["audio"] == mix["audio"]


def test_model_may_name_an_adapter_as_v1_models_lists_it(live):
    """``model: caption-a`` is the adapter caption-a at weight 1, as chat
    completions take it; before, only ``adapters`` could name it."""
    image = {"image": ("p.png", png_bytes(), "image/png")}
    named = post(live, "/v1/captions", files=image, data={"model": "caption-a"}).json()
    assert named == post(live, "/v1/captions", files=image,
                         data={"adapters": json.dumps([{"name": "caption-a", "weight": 1}])}).json()
    assert named["adapters"][0]["name"] == "caption-a" and named["base"] == "demo"
    halved = post(live, "/v1/captions", files=image,
                  data={"model": "caption-a", "adapters": json.dumps([{"name": "caption-a", "weight": 0.5}])}).json()
    assert halved["adapters"][0]["weight"] == 0.5  # the mix weighs the adapter `model` names
    played = post(live, "/v1/music", json={"prompt": "calm piano", "seconds": 1.0, "model": "tune-a"}).json()
    assert played["audio"] == post(live, "/v1/music", json={"prompt": "calm piano", "seconds": 1.0,
                                                            "adapters": [{"name": "tune-a"}]}).json()["audio"]


@pytest.mark.parametrize("route, kwargs, status, param, text", [
    ("/v1/captions", {"files": {"image": ("x.png", b"not an image", "image/png")}}, 400, "image", "not an image"),
    ("/v1/captions", {"files": {"image": ("x.png", b"", "image/png")}}, 400, "image", "empty"),
    ("/v1/captions", {"json": {"image": "%%%"}}, 400, "image", "base64"),
    ("/v1/captions", {"json": {"image": "https://example.com/cat.png"}}, 400, "image", "the server fetches no URLs"),
    ("/v1/captions", {"json": {"image": "data:image/png;base64"}}, 400, "image", "data: URL without its data"),
    ("/v1/captions", {"files": {"image": ("x.png", png_bytes(), "image/png"), "adapters": ("a.json", b"[]")}}, 400,
     "adapters", "a text field, not a file"),
    ("/v1/captions", {"files": {"image": ("x.png", png_bytes(), "image/png")},
                      "data": {"adapters": '[{"name": "caption-a"}, {"name": "caption-a", "weight": 0.5}]'}}, 400,
     "adapters", "'caption-a' is named twice"),
    ("/v1/captions", {"json": ["a list"]}, 400, None, "JSON object"),
    ("/v1/captions", {"content": b"{", "headers": {"content-type": "application/json"}}, 400, None, "not valid JSON"),
    ("/v1/captions", {"content": b"x", "headers": {"content-type": "text/plain"}}, 415, None, "multipart"),
    ("/v1/captions", {"files": {"image": ("x.png", png_bytes(), "image/png")}, "data": {"adapters": "[{"}}, 400,
     "adapters", "JSON list"),
    ("/v1/captions", {"files": {"image": ("x.png", png_bytes(), "image/png")},
                      "data": {"adapters": '[{"name": "nope"}]'}}, 404, "adapters", "no adapter named 'nope'"),
    ("/v1/captions", {"files": {"image": ("x.png", png_bytes(), "image/png")},
                      "data": {"adapters": '[{"name": "caption-a"}, {"name": "kauko"}]'}}, 400, "adapters",
     "not a 'caption' one"),
    ("/v1/captions", {"files": {"image": ("x.png", png_bytes(), "image/png")}, "data": {"model": "other"}}, 404,
     "model", "no caption base or adapter named 'other'; served bases: demo; adapters: caption-a"),
    ("/v1/music", {"json": {"prompt": "x", "model": "caption-a"}}, 400, "model",
     "adapter 'caption-a' is a 'caption' adapter, not a 'music-style' one"),  # was "no ... named 'caption-a'"
    ("/v1/vqa", {"files": {"image": ("x.png", png_bytes(), "image/png")}}, 400, "question", "question"),
    ("/v1/music", {"json": {"prompt": "x", "seconds": 600}}, 400, "seconds", "30"),
    ("/v1/music", {"json": {"prompt": ""}}, 400, "prompt", "at least 1"),
    ("/v1/predict/caption", {"json": {"inputs": ["hello"]}}, 400, "task", "caption reads images: upload them to "
     "/v1/captions"),  # it said "pass paths of existing images", which this route refuses
    ("/v1/predict/voice-clone", {"json": {"inputs": ["/etc/passwd"]}}, 400, "inputs.0", "names a file on the server"),
    ("/v1/predict/voice-clone", {"json": {"inputs": ["ok", "~"]}}, 400, "inputs.1", "names a file"),
    ("/v1/predict/voice-clone", {"json": {"inputs": ["ok", ""]}}, 400, "inputs", "nothing to say"),  # not a file
    ("/v1/predict/voice-clone", {"json": {"inputs": ["ok"], "options": {"slot": "x"}}}, 400, "options",
     "options: Extra inputs are not permitted"),  # it was ignored
    ("/v1/predict/voice-clone", {"json": {"inputs": ["ok", "Go. " * 1100]}}, 400, "inputs.1", "at most 4096"),
    ("/v1/predict/no-such-task", {"json": {"inputs": ["x"]}}, 404, "model", "no no-such-task model"),
    # Pydantic's own: the param was the character position ("19"), "voice.str", no word of the content type.
    ("/v1/audio/speech", {"content": b'{"model": "tts-1", ', "headers": {"content-type": "application/json"}}, 400,
     None, "the body is not valid JSON (Expecting property name enclosed in double quotes at character 19)"),
    ("/v1/audio/speech", {"json": {"model": "tts-1", "voice": 5, "input": "Hi."}}, 400, "voice", "voice: "),
    ("/v1/chat/completions", {"json": {"model": "caption-a", "stream": "yes", "messages": [
        {"role": "user", "content": "hi"}]}}, 400, "stream", "valid boolean"),  # "yes" streamed
    ("/v1/audio/speech", {"content": json.dumps({"model": "tts-1", "voice": "klatt", "input": "Hi."}).encode(),
                          "headers": {"content-type": "text/plain"}}, 400, None, "Content-Type: application/json"),
])
def test_bad_requests_get_a_json_error_naming_the_field(live, route, kwargs, status, param, text):
    message = error_of(post(live, route, **kwargs), status, param)
    assert text in message, message


def test_an_image_over_pillows_bomb_size_is_a_400_even_as_the_server_s_first(live, monkeypatch):
    """Pillow's own bomb error (its default limit, in force until lorakit's
    first image check lifts it) was a 500 with a traceback."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's default: a fresh server process
    bomb = io.BytesIO()
    Image.new("1", (20_000, 10_000)).save(bomb, format="PNG")  # 200 M pixels in 25 KB
    assert "too large" in error_of(post(live, "/v1/captions", files={"image": ("b.png", bomb.getvalue(), "image/png")}),
                                   400, "image")


def test_a_huge_body_is_refused_before_it_is_read(live):
    response = post(live, "/v1/captions", content=b"x" * (17 * 1024 * 1024),
                    headers={"content-type": "application/json"})
    assert response.status_code == 413 and "16 MB" in response.json()["error"]["message"]


UPLOAD_HEAD = (b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.dcm"\r\n'
               b"Content-Type: application/dicom\r\n\r\n")


@pytest.mark.parametrize("route, kind, head", [
    ("/v1/captions", "application/json", b'{"image": "'),
    ("/v1/captions", "multipart/form-data; boundary=b", UPLOAD_HEAD),
    ("/v1/chat/completions", "application/json", b'{"model": "caption-a", "messages": [{"role": "user", "content": "'),
])
def test_a_huge_body_sent_in_chunks_without_a_length_is_refused_too(live, route, kind, head):
    """No Content-Length to check up front: the body is counted as it comes,
    and the server stops reading at the limit."""
    def chunks():
        yield head
        for _ in range(40):
            yield b"A" * (1024 * 1024)

    response = post(live, route, content=chunks(), headers={"content-type": kind})
    assert response.status_code == 413 and "16 MB" in response.json()["error"]["message"]
    assert "--max-upload" in response.json()["error"]["message"]


def test_a_full_queue_answers_503_with_retry_after(live, service):
    for _ in range(service.capacity.size):
        service.capacity.take()
    try:
        response = post(live, "/v1/captions", files={"image": ("x.png", png_bytes(), "image/png")})
    finally:
        for _ in range(service.capacity.size):
            service.capacity.give_back()
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "queue is full" in response.json()["error"]["message"]
    metrics = httpx.get(f"{live.url}/metrics").text
    assert "lorakit_queue_full_total 1.0" in metrics
    assert 'lorakit_requests_total{route="/v1/captions",status="503"} 1.0' in metrics


def test_routes_and_methods_the_server_lacks_are_errors_in_openai_s_shape_and_head_answers(live):
    """They were FastAPI's {"detail": ...}; HEAD, which health checks send, was a 405."""
    assert "no route GET /v1/embeddings" in error_of(httpx.get(f"{live.url}/v1/embeddings"), 404, None)
    refused = httpx.get(f"{live.url}/v1/audio/speech")
    assert "GET is not allowed on /v1/audio/speech; it takes POST" in error_of(refused, 405, None)
    for route in ("/", "/healthz", "/v1/models"):
        assert httpx.head(f"{live.url}{route}").status_code == 200, route


def test_a_client_that_leaves_mid_upload_is_no_server_failure(live, capfd):
    """It was logged as a traceback and counted as a 500."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(live.url)
    for _ in range(2):
        with socket.create_connection((where.hostname, where.port)) as connection:
            connection.sendall(b"POST /v1/captions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 5000\r\n\r\n{\"image\": \"AAA")
            time.sleep(0.3)
    time.sleep(0.5)
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'route="/v1/captions",status="499"' in metrics and 'route="/v1/captions",status="500"' not in metrics
    assert "Traceback" not in capfd.readouterr().err
    assert post(live, "/v1/captions", files={"image": ("x.png", png_bytes(), "image/png")}).status_code == 200


def test_models_health_and_metrics_say_what_is_served(live):
    models = httpx.get(f"{live.url}/v1/models").json()
    adapters = {m["id"]: m for m in models["data"] if m["kind"] == "adapter"}
    assert {"kauko", "calm", "caption-a", "styles/caption-b"} <= set(adapters)
    assert adapters["kauko"]["task"] == "voice-clone" and adapters["kauko"]["manifest"]["r"] == 4
    voice_base = next(m for m in models["data"] if m["kind"] == "base" and m["task"] == "voice-clone")
    assert voice_base["voices"] == ["high-female", "klatt", "low-male"]
    # Both tasks serve a base named demo: listed by unique ids, which requests take.
    ids = [m["id"] for m in models["data"]]
    assert len(set(ids)) == len(ids) and {"voice-clone/demo", "caption/demo"} <= set(ids)
    spoken = post(live, "/v1/audio/speech", json={"model": "voice-clone/demo", "voice": "low-male",
                                                  "input": "Hello there.", "response_format": "wav"})
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"
    assert any("broken" in folder and "not valid JSON" in reason for folder, reason in models["refused"].items())
    health = httpx.get(f"{live.url}/healthz").json()
    assert health["status"] == "ok" and all(b["ready"] for b in health["bases"])
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'lorakit_adapters_loaded{task="caption"} 2.0' in metrics
    assert "lorakit_request_seconds_bucket" in metrics


def test_an_adapter_trained_after_start_is_served_without_restart(live, served):
    shutil.copytree(served / "caption-a", served / "late" / "caption-c")
    response = post(live, "/v1/captions", files={"image": ("x.png", png_bytes(), "image/png")},
                    data={"adapters": '[{"name": "late/caption-c"}]'})
    assert response.status_code == 200, response.text
    first = post(live, "/v1/captions", files={"image": ("x.png", png_bytes(), "image/png")},
                 data={"adapters": '[{"name": "caption-a"}]'}).json()
    assert response.json()["caption"] == first["caption"]  # the same weights, under another name


def test_an_adapter_retrained_in_place_is_served_with_its_new_weights(live, service, served, monkeypatch):
    monkeypatch.setattr(service, "rescan_seconds", 0.0)  # look at the folders on every request

    def caption(name):
        response = post(live, "/v1/captions", files={"image": ("x.png", png_bytes(), "image/png")},
                        data={"adapters": json.dumps([{"name": name}])})
        assert response.status_code == 200, response.text
        return response.json()

    shutil.copytree(served / "caption-a", served / "retrained")
    before = caption("retrained")
    rewrite_adapter(served / "retrained", served / "styles" / "caption-b")
    after, other = caption("retrained"), caption("styles/caption-b")
    assert after["caption"] == other["caption"]
    assert after["adapters"][0]["fingerprint"] == other["adapters"][0]["fingerprint"]
    assert after["adapters"][0]["fingerprint"] != before["adapters"][0]["fingerprint"]
    # The model's outputs, not only the caption (greedy captions of two random adapters can tie):
    served_now = probe(service, "caption", (("retrained", 1.0),))
    assert torch.equal(served_now, probe(service, "caption", (("styles/caption-b", 1.0),)))
    assert not torch.allclose(served_now, probe(service, "caption", (("caption-a", 1.0),)), atol=1e-3)


def test_a_rewritten_adapter_that_no_longer_fits_is_refused_until_fixed(live, service, served, monkeypatch):
    monkeypatch.setattr(service, "rescan_seconds", 0.0)
    shutil.copytree(served / "caption-a", served / "flip")
    request = dict(files={"image": ("x.png", png_bytes(), "image/png")}, data={"adapters": '[{"name": "flip"}]'})
    assert post(live, "/v1/captions", **request).status_code == 200
    rewrite_adapter(served / "flip", served / "caption-a", base_fingerprint="sha256:0000")
    assert "fingerprint" in error_of(post(live, "/v1/captions", **request), 400, "adapters")  # not the old version
    assert "flip" in httpx.get(f"{live.url}/v1/models").json()["refused"]
    rewrite_adapter(served / "flip", served / "caption-a")
    assert post(live, "/v1/captions", **request).status_code == 200
    assert "flip" not in httpx.get(f"{live.url}/v1/models").json()["refused"]


def test_an_adapter_of_other_base_weights_is_refused_by_name(live, served):
    folder = served / "mismatch"
    shutil.copytree(served / "caption-a", folder)
    manifest = json.loads((folder / "adapter" / "lorakit.json").read_text())
    manifest["base_fingerprint"] = "sha256:0000"
    (folder / "adapter" / "lorakit.json").write_text(json.dumps(manifest))
    response = post(live, "/v1/captions", files={"image": ("x.png", png_bytes(), "image/png")},
                    data={"adapters": '[{"name": "mismatch"}]'})
    assert "fingerprint" in error_of(response, 400, "adapters")
    assert "mismatch" in httpx.get(f"{live.url}/v1/models").json()["refused"]


@pytest.mark.parametrize("path", ["..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "adapter/../../kauko/report.json",
                                  "a%00b", "a" * 5000, "a/" * 3000 + "x"])  # the last three were 500s
def test_run_files_stay_inside_the_run(live, path):
    response = httpx.get(f"{live.url}/runs/calm/files/{path}")
    # httpx resolves "../" itself: that request reaches no route (a 404 with no param).
    assert response.status_code == 404 and response.json()["error"]["param"] in ("file", None)
    good = httpx.get(f"{live.url}/runs/calm/files/report.json")
    assert good.status_code == 200 and "speaker_similarity" in good.text
