"""A server started with an API key answers only requests that carry it:
OpenAI's clients by their api_key, the web page by its cookie."""

import base64
import json
from urllib.parse import quote

import httpx
import pytest

from serving_support import API_KEY, png_bytes

openai = pytest.importorskip("openai")


def test_an_openai_client_needs_the_key(keyed):
    without = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        without.models.list()
    assert raised.value.status_code == 401 and raised.value.body["code"] == "invalid_api_key"
    assert "not this server's" in raised.value.body["message"]
    client = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key=API_KEY, max_retries=0)
    assert "kauko" in {m.id for m in client.models.list().data}
    speech = client.audio.speech.create(model="tts-1", voice="kauko", input="Hello.", response_format="wav")
    assert speech.content[:4] == b"RIFF"


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/runs"), ("GET", "/runs/calm/report"),
    ("GET", "/runs/calm/files/report.json"), ("GET", "/docs"), ("GET", "/openapi.json"),
    ("POST", "/v1/captions"), ("POST", "/v1/audio/speech"), ("POST", "/v1/chat/completions"),
    ("GET", "/no/such/route"),
])
def test_every_route_but_the_page_and_health_needs_the_key(keyed, method, path):
    response = httpx.request(method, keyed.url + path, timeout=60)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "needs its API key" in response.json()["error"]["message"]


def test_the_page_and_health_are_open_and_the_cookie_opens_the_rest(keyed, served):
    assert httpx.get(keyed.url + "/").status_code == 200
    assert httpx.get(keyed.url + "/healthz").json()["status"] == "ok"
    cookies = {"lorakit_api_key": quote(API_KEY)}  # as the page writes it
    report = httpx.get(f"{keyed.url}/runs/calm/files/report.json", cookies=cookies)
    assert report.status_code == 200 and report.json() == json.loads((served / "calm" / "report.json").read_text())
    caption = httpx.post(f"{keyed.url}/v1/captions", cookies=cookies, timeout=60,
                         json={"image": base64.b64encode(png_bytes()).decode()})
    assert caption.status_code == 200 and caption.json()["caption"]
    wrong = httpx.get(f"{keyed.url}/runs", cookies={"lorakit_api_key": "guess"})
    assert wrong.status_code == 401 and "not this server's" in wrong.json()["error"]["message"]


def test_refusals_are_counted(keyed):
    httpx.get(keyed.url + "/v1/models")
    metrics = httpx.get(keyed.url + "/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).text
    assert 'lorakit_requests_total{route="unmatched",status="401"}' in metrics


def test_an_empty_key_is_refused_before_anything_loads(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lorakit.cli import cli

    def serving(*args, **kwargs):
        raise AssertionError("the server started without a key")

    monkeypatch.setattr("uvicorn.Server.run", serving)

    result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--api-key", " "])
    assert result.exit_code != 0 and "--api-key (or LORAKIT_API_KEY) is empty" in result.output
    result = CliRunner().invoke(cli, ["serve", str(tmp_path)], env={"LORAKIT_API_KEY": ""})
    assert result.exit_code != 0 and "is empty" in result.output


def test_a_keyless_server_on_this_machine_answers_loopback_names_only(service):
    """A page the user visits can point its own name at 127.0.0.1 (DNS
    rebinding) and read what the server answers; its requests carry that
    name in Host and are refused."""
    from serving_support import another_server

    with another_server(service, loopback_names_only=True) as server:
        for name in ("127.0.0.1", "localhost", "LOCALHOST", "[::1]"):
            assert httpx.get(f"{server.url}/runs", headers={"Host": f"{name}:{server.port}"}).status_code == 200, name
        for name in ("rebind.example", "127.0.0.1.rebind.example", "localhost.evil", ""):
            refused = httpx.get(f"{server.url}/runs", headers={"Host": f"{name}:{server.port}" if name else ""})
            assert refused.status_code == 403, name
            assert "localhost or 127.0.0.1 only" in refused.json()["error"]["message"]
            assert "calm" not in refused.text
