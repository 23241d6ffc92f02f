"""The web page in a real browser: Playwright driving Debian's chromium."""

import io
import shutil
from pathlib import Path

import pytest

from serving_support import png_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("the browser test needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        yield browser
        browser.close()


def picture(png: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def _audio_seconds(page, selector: str) -> float:
    """The length of the page's audio element at ``selector``, once the browser knows it."""
    return page.eval_on_selector(selector, "a => new Promise(r => a.readyState >= 1 ? r(a.duration) "
                                           ": a.onloadedmetadata = () => r(a.duration))")


def test_speak_in_the_cloned_voice_from_the_page(live, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    assert page.locator("#tabs button").all_inner_texts() == ["Speak", "Caption", "Ask", "Play", "Runs"]
    page.select_option("#speech-voice", "kauko")
    page.fill("#speech-text", "Hello from the browser.")
    page.click("#speech-go")
    page.wait_for_selector("#speech-audio[data-complete=yes]", timeout=60_000)
    duration = _audio_seconds(page, "#speech-audio")
    assert 0.5 < duration < 10
    long_text = "The first sentence plays at once. The second follows it. And a third ends the answer."
    page.fill("#speech-text", long_text)  # streamed: MP3 through MediaSource, sentence by sentence
    page.click("#speech-go")
    page.wait_for_selector("#speech-audio[data-complete=yes]", timeout=60_000)
    longer = page.eval_on_selector("#speech-audio", "a => a.duration")
    assert page.get_attribute("#speech-audio", "data-streamed") == "yes"  # chromium plays MP3 via MediaSource
    assert 3 * duration * 0.6 < longer < 3 * duration * 3 and not page.query_selector("#speech-result .error")
    assert "kauko x1" in page.inner_text("#speech-result .provenance")
    shot = picture(page.screenshot(path=str(tmp_path / "speak.png")))
    assert shot.size == (1000, 700)
    assert shot.getpixel((500, 20)) == (29, 53, 87)  # the header's colour: the page is styled, not blank
    assert len(set(shot.resize((50, 35)).getdata())) > 20


def _caption_tab_without_adapters(live, browser, image):
    """The page on its Caption tab, ``image`` chosen, every adapter unticked."""
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    page.click("#caption-button")
    page.set_input_files("#caption-image", str(image))
    for box in page.locator('.adapters[data-task="caption"] input[type=checkbox]').all():
        box.uncheck()
    return page


def test_caption_an_uploaded_image_with_a_mix(live, browser, tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes((40, 160, 60)))
    page = _caption_tab_without_adapters(live, browser, image)
    row = page.locator('.adapters[data-task="caption"] .adapter[data-name="caption-a"]')
    row.locator("input[type=checkbox]").check()
    row.locator("input[type=number]").fill("0.5")
    page.click("#caption-go")
    page.wait_for_selector("#caption-result .answer", timeout=60_000)
    caption = page.inner_text("#caption-result .answer")
    import httpx

    expected = httpx.post(f"{live.url}/v1/captions", files={"image": ("p.png", image.read_bytes(), "image/png")},
                          data={"adapters": '[{"name": "caption-a", "weight": 0.5}]'}, timeout=60).json()["caption"]
    assert caption == expected
    page.screenshot(path=str(tmp_path / "caption.png"))


def test_a_caption_the_length_limit_cut_says_so(live, browser, tmp_path):
    import httpx

    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes((40, 160, 60)))
    page = _caption_tab_without_adapters(live, browser, image)  # the demo base rambles to the limit
    page.click("#caption-go")
    page.wait_for_selector("#caption-result .answer", timeout=60_000)
    said = httpx.post(f"{live.url}/v1/captions", files={"image": ("p.png", image.read_bytes(), "image/png")},
                      timeout=60).json()
    assert said["finish_reason"] == "length"
    assert page.inner_text("#caption-result .cut") == "cut short by the length limit"


def test_the_image_and_music_tabs_start_on_their_newest_adapter(live, browser):
    """A page opened after training answers with what was trained: the task's
    newest adapter is ticked (the others can be added for a mix); the speech
    tab's adapter list starts empty, its voice list picks the voice."""
    import httpx

    listed = httpx.get(f"{live.url}/v1/models", timeout=30).json()["data"]
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    for task in ("caption", "music-style", "voice-clone"):
        adapters = [m for m in listed if m["kind"] == "adapter" and m["task"] == task]
        newest = max(adapters, key=lambda m: (m["manifest"]["created"], m["id"]))["id"]
        ticked = page.eval_on_selector_all(f'.adapters[data-task="{task}"] .adapter',
                                           "rows => rows.filter(r => r.querySelector('input').checked)"
                                           ".map(r => r.dataset.name)")
        assert len(adapters) >= 1 and ticked == ([] if task == "voice-clone" else [newest])


def test_play_a_clip_of_the_length_asked_for(live, browser):
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    page.click("#music-button")
    page.fill("#music-prompt", "calm piano")
    page.fill("#music-seconds", "1.5")
    page.click("#music-go")
    page.wait_for_selector("#music-result audio", timeout=60_000)
    duration = _audio_seconds(page, "#music-result audio")
    assert 1.3 < duration < 1.8
    page.fill("#music-seconds", "45")
    page.click("#music-go")
    page.wait_for_selector("#music-result .error", timeout=60_000)
    assert "30" in page.inner_text("#music-result .error")


def test_a_dicom_scan_is_asked_about_and_named_where_the_browser_cannot_show_it(live, browser):
    pydicom = pytest.importorskip("pydicom")  # lorakit[vqa] brings it
    scan = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    page.click("#vqa-button")
    page.set_input_files("#vqa-image", str(scan))
    page.fill("#vqa-question", "what is shown?")
    page.click("#vqa-go")
    page.wait_for_selector("#vqa-result .answer", timeout=60_000)
    import httpx

    expected = httpx.post(f"{live.url}/v1/vqa", files={"image": ("CT_small.dcm", scan.read_bytes())},
                          data={"question": "what is shown?"}, timeout=60).json()
    assert page.inner_text("#vqa-result .answer") == expected["answer"]
    assert page.locator("#vqa-result .cut").count() == (expected["finish_reason"] == "length")
    page.wait_for_selector("#vqa-result .note", timeout=10_000)
    assert "CT_small.dcm (read by the model" in page.inner_text("#vqa-result .note")
    assert page.locator("#vqa-result img").count() == 0


def test_an_error_is_shown_not_swallowed(live, browser):
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    page.fill("#speech-text", "It costs 5 €.")
    page.click("#speech-go")
    page.wait_for_selector("#speech-result .error", timeout=60_000)
    assert "'€'" in page.inner_text("#speech-result .error")


def test_runs_are_listed_with_their_reports(live, browser, tmp_path):
    page = browser.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    page.click("#runs-button")
    row = page.locator("#runs-table tbody tr", has_text="kauko")
    assert "speaker_similarity: 0.500 → 0.700" in row.inner_text()
    row.locator("a").click()
    page.wait_for_selector("#metrics")
    assert "kauko: voice-clone on demo" in page.inner_text("h1")
    cells = page.locator("#metrics td").all_inner_texts()
    assert "0.5000" in cells and "0.7000" in cells and "+0.2000" in cells
    page.screenshot(path=str(tmp_path / "report.png"))


def test_the_page_opens_while_a_long_job_holds_a_new_voice_s_load_and_offers_the_voice(live, service, served,
                                                                                      browser, monkeypatch):
    from serving_support import voice_found_behind_a_held_job

    with voice_found_behind_a_held_job(live, service, served, monkeypatch) as (name, let_go):
        page = browser.new_page()
        page.goto(live.url + "/")
        page.wait_for_selector("body[data-ready=yes]", timeout=20_000)  # not waiting for the held job
        assert name in page.eval_on_selector_all("#speech-voice option", "options => options.map(o => o.value)")
        let_go()
        page.select_option("#speech-voice", name)
        page.fill("#speech-text", "Loaded when asked for.")
        page.click("#speech-go")
        page.wait_for_selector("#speech-audio[data-complete=yes]", timeout=60_000)
        assert f"{name} x1" in page.inner_text("#speech-result .provenance")


def test_a_report_reads_on_a_phone(live, browser):
    """A shared report opens on phones: without a viewport it was laid out
    980 px wide and shrunk, its metrics table wider than the screen."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(live.url + "/runs/kauko/report")
    page.wait_for_selector("#metrics")
    assert page.evaluate("window.innerWidth") == 390 and page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize") == "22px"  # not shrunk
    context.close()


def test_a_server_with_a_key_asks_for_it_once_then_works(keyed, browser):
    from serving_support import API_KEY

    context = browser.new_context()
    page = context.new_page()
    page.goto(keyed.url + "/")
    page.wait_for_selector("#key-form:not([hidden])", timeout=30_000)
    assert "needs its API key" in page.inner_text("#key-message")
    page.fill("#api-key", "a guess")
    page.click("#key-go")
    page.wait_for_function("document.querySelector('#key-message').textContent.includes(\"not this server's\")",
                           timeout=30_000)
    page.fill("#api-key", API_KEY)
    page.click("#key-go")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    assert "Runs" in page.locator("#tabs button").all_inner_texts()
    page.click("#runs-button")
    assert "calm" in page.inner_text("#runs-table")  # /runs answered: the cookie went with the page's requests
    with page.expect_navigation():
        page.click("#runs-table a >> text=calm")
    assert page.url.endswith("/runs/calm/report") and "401" not in page.title()
    assert "invalid_api_key" not in page.content()
    cookie = next(c for c in context.cookies() if c["name"] == "lorakit_api_key")
    assert not cookie["secure"]  # over plain HTTP a Secure cookie would never be sent back
    context.close()


@pytest.fixture
def keyed_over_https(service, tmp_path):
    """A server over the same service answering HTTPS only, with ``API_KEY``."""
    from certificates import self_signed

    from serving_support import API_KEY, another_server

    cert, key = self_signed(tmp_path)
    with another_server(service, tls=(str(cert), str(key)), api_key=API_KEY) as server:
        yield server


def test_over_https_the_page_keeps_the_key_in_a_secure_cookie(keyed_over_https, browser):
    from serving_support import API_KEY

    assert keyed_over_https.url.startswith("https://")
    context = browser.new_context(ignore_https_errors=True)  # self-signed
    page = context.new_page()
    page.goto(keyed_over_https.url + "/")
    page.wait_for_selector("#key-form:not([hidden])", timeout=30_000)
    page.fill("#api-key", API_KEY)
    page.click("#key-go")
    page.wait_for_selector("body[data-ready=yes]", timeout=30_000)
    page.click("#runs-button")
    assert "calm" in page.inner_text("#runs-table")  # the cookie went with the page's requests
    cookie = next(c for c in context.cookies() if c["name"] == "lorakit_api_key")
    assert cookie["secure"] and cookie["sameSite"] == "Strict"
    context.close()
