"""The web console at `/`, driven by a real headless Chromium against the real stack.

Only 127.0.0.1 is reachable from the page: anything else is aborted and fails the test."""

import contextlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from .stack import API_TOKEN, start_web

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]
SLEEPER = "import time; print('go', flush=True); time.sleep(60)"
TASK_S = 30_000  # ms: a task's result, sandbox start included
LOAD_IMAGE = """url => new Promise((done) => {
  const image = new Image();
  image.onload = () => done("kept");
  image.onerror = () => done("revoked");
  image.src = url;
})"""
CHART = ("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]); plt.show()\n"
         "open('outputs/t.csv', 'w').write('a,b\\n1,2\\n')")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, web):
    with console_page(browser, web.url) as page:
        yield page


@contextlib.contextmanager
def console_page(browser, url: str):
    """A fresh page on the console; fails the test on script errors, CSP violations or
    traffic to anywhere but 127.0.0.1."""
    context = browser.new_context()
    elsewhere, problems = [], []

    def local_only(route):
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.on("websocket", lambda ws: None if urlsplit(ws.url).hostname == "127.0.0.1"
            else elsewhere.append(ws.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(url + "/")
    yield page
    context.close()
    assert elsewhere == [] and problems == []


def connect(page, token: str = API_TOKEN) -> None:
    page.fill("#token", token)
    page.click("#connect")


def run_code(page, code: str) -> None:
    page.select_option("#kind", "code")
    page.select_option("#code-language", "python")
    page.fill("#code", code)
    page.click("#submit")


def test_the_console_is_static_with_a_strict_csp(web):
    page = httpx.get(web.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self' ws: wss:" in csp
    assert "unsafe-inline" not in csp
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts and all("src=" in tag for tag in scripts)  # no inline scripts
    for asset in ("console.js", "console.css", "vendor/socket.io.min.js"):
        response = httpx.get(f"{web.url}/console/{asset}")
        assert response.status_code == 200 and "content-security-policy" in response.headers
    assert "Socket.IO v4.8" in httpx.get(web.url + "/console/vendor/socket.io.min.js").text
    for path in ("/console/vendor/README.md", "/console/../cli.py", "/console/%2e%2e/cli.py"):
        assert httpx.get(web.url + path).status_code == 404


def test_a_code_task_streams_its_output(page):
    expect(page.locator("#health")).to_have_text("health: ok")
    connect(page)
    expect(page.locator("#connection")).to_have_text("connected")
    run_code(page, "print(6*7)")
    expect(page.locator("#output")).to_contain_text("42", timeout=TASK_S)
    expect(page.locator("#task-status")).to_have_text("succeeded", timeout=TASK_S)
    expect(page.locator("#events")).to_contain_text("exit_code=0")
    assert API_TOKEN not in page.url
    assert page.evaluate("sessionStorage.getItem('aios.token')") == API_TOKEN


def test_a_bad_token_shows_an_error(page):
    connect(page, "wrong-token-0123456789")
    expect(page.locator("#error")).to_contain_text("refused this token (401")
    expect(page.locator("#connection")).to_have_text("token refused")
    expect(page.locator("#submit")).to_be_disabled()
    assert page.evaluate("sessionStorage.getItem('aios.token')") is None  # not kept


def test_cancel_stops_a_running_task(page):
    connect(page)
    expect(page.locator("#connection")).to_have_text("connected")
    run_code(page, SLEEPER)
    expect(page.locator("#output")).to_contain_text("go", timeout=TASK_S)
    expect(page.locator("#task-status")).to_have_text("running")
    page.click("#cancel")
    expect(page.locator("#task-status")).to_have_text("cancelled", timeout=15_000)
    expect(page.locator("#cancel")).to_be_disabled()


def test_event_data_is_shown_as_text_never_as_html(page):
    connect(page)
    expect(page.locator("#connection")).to_have_text("connected")
    markup = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
    run_code(page, f"print({markup!r})")
    expect(page.locator("#output")).to_contain_text(markup, timeout=TASK_S)
    page.check("#raw-mode")
    page.select_option("#kind", "echo")
    page.fill("#raw-input", '{"text": "<i>raw</i>"}')
    page.click("#submit")
    expect(page.locator("#events")).to_contain_text("<i>raw</i>", timeout=TASK_S)
    assert page.locator("#output img, #output b, #events i").count() == 0
    assert page.title() != "pwned"


def test_raw_json_that_does_not_parse_is_refused_before_sending(page):
    connect(page)
    expect(page.locator("#connection")).to_have_text("connected")
    page.check("#raw-mode")
    page.fill("#raw-input", "{nope")
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("not valid JSON")


def test_artifacts_show_images_inline_and_offer_the_rest_as_downloads(page):
    connect(page)
    expect(page.locator("#connection")).to_have_text("connected")
    run_code(page, CHART)
    expect(page.locator("#task-status")).to_have_text("succeeded", timeout=TASK_S)
    image = page.locator("#artifacts img")
    expect(image).to_have_count(1)
    page.wait_for_function("() => { const image = document.querySelector('#artifacts img');"
                           " return image.complete && image.naturalWidth > 0; }")
    src = image.get_attribute("src")
    assert src.startswith("blob:")  # fetched with the token, not by the <img> itself
    expect(page.locator("#artifacts figcaption")).to_have_text(
        re.compile(r"\.png \(image/png, [\d,]+ bytes\)$"))
    expect(page.locator("#events")).to_contain_text("t.csv (text/csv, 8 bytes)")
    with page.expect_download() as info:
        page.click("#artifacts button.download")
    download = info.value
    assert download.suggested_filename == "t.csv"
    assert Path(download.path()).read_bytes() == b"a,b\n1,2\n"

    assert page.evaluate(LOAD_IMAGE, src) == "kept"
    run_code(page, "print('next')")  # a new task: the old one's images are let go
    expect(page.locator("#artifacts figure")).to_have_count(0)
    assert page.evaluate(LOAD_IMAGE, src) == "revoked"


def test_attached_files_reach_the_code_task(page):
    connect(page)
    expect(page.locator("#connection")).to_have_text("connected")
    page.select_option("#kind", "code")
    page.set_input_files("#attach", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"attached text 123\n"},
        {"name": "<i>x</i>.csv", "mimeType": "text/csv", "buffer": b"1,2\n"}])
    chips = page.locator("#attachments li")
    expect(page.locator('#attachments li[data-state="ready"]')).to_have_count(2)
    expect(chips.nth(1)).to_contain_text("<i>x</i>.csv (4 bytes)")  # a name is text too
    assert page.locator("#attachments i").count() == 0
    chips.nth(1).get_by_role("button").click()
    expect(chips).to_have_count(1)
    run_code(page, "print(open('notes.txt').read())")
    expect(page.locator("#output")).to_contain_text("attached text 123", timeout=TASK_S)
    expect(page.locator("#events")).to_contain_text("attached: notes.txt")
    expect(page.locator("#events")).not_to_contain_text(".csv")  # removed before the submit


def test_an_upload_the_server_refuses_is_shown(browser, stack_env):
    small = start_web({**stack_env, "AIOS_UPLOAD_MAX_BYTES": "1000"}, "web-small-uploads")
    try:
        with console_page(browser, small.url) as page:
            connect(page)
            expect(page.locator("#connection")).to_have_text("connected")
            page.set_input_files("#attach", files=[
                {"name": "big.bin", "mimeType": "application/octet-stream",
                 "buffer": b"x" * 10_000}])
            expect(page.locator("#error")).to_contain_text("Uploading big.bin failed (413)")
            expect(page.locator("#attachments li")).to_have_count(0)
    finally:
        small.stop()
