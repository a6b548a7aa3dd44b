"""The playground in a real browser: headless Chromium, driven by Selenium, against the app served
over HTTP on a loopback port (started once for this module) with the offline provider.

Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`), found on
PATH or named by PLAYGROUND_CHROMIUM and PLAYGROUND_CHROMEDRIVER; without them these tests skip,
and fail under CI=true. With PLAYGROUND_SCREENSHOTS=DIR a PNG of each state is saved in DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
{%- if cookiecutter.use_auth %}
import urllib.request
{%- endif %}
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
{%- if cookiecutter.use_auth %}
from uuid import uuid4
{%- endif %}

import pytest
from flask_openapi3 import OpenAPI
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.ai.base import ChatRequest, StreamChunk
from {{ cookiecutter.package_name }}.ai.providers.fake import FakeProvider

# The live app's settings: the test database and Redis, the offline provider, generous limits.
LIVE_SETTINGS: dict[str, Any] = {
    "app_env": "testing",
    "secret_key": "browser-test-secret-key-that-is-long-enough-0123",
{%- if cookiecutter.use_auth %}
    "jwt_secret_key": "browser-test-jwt-secret-key-that-is-long-enough",
    "rate_limit_auth": "10000 per minute",
{%- endif %}
    "redis_url": os.environ.get("TEST_REDIS_URL") or None,
    "auto_migrate": False,
    "log_level": "WARNING",
    "rate_limit_default": "10000 per minute",
    "rate_limit_ai": "10000 per minute",
    "ai_provider": "fake",
    "playground_enabled": True,
}
{%- if cookiecutter.use_auth %}
PASSWORD = "correct-horse-battery"  # of every user these tests register
{%- endif %}

# The offline provider sends a reply word by word but all at once; a model takes its time. This
# pause before each chunk, used only by these tests, lets the browser show the reply growing.
CHUNK_DELAY = 0.04
WAIT = 10  # seconds any one step may take
PROMPT = "Tell me, in a handful of words, how a streamed reply arrives"
INSTALL_HINT = (
    "apt-get install chromium chromium-driver, or set PLAYGROUND_CHROMIUM=/path/to/chromium "
    "and PLAYGROUND_CHROMEDRIVER=/path/to/chromedriver"
)


class PacedFakeProvider(FakeProvider):
    """The offline provider, waiting CHUNK_DELAY before each streamed chunk."""

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        for chunk in super().stream(request):
            time.sleep(CHUNK_DELAY)
            yield chunk


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LiveServer:
    """The app behind werkzeug's threaded HTTP server on 127.0.0.1, in a daemon thread."""

    def __init__(self, app: OpenAPI) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.extensions["database_engine"].dispose()
        client = self.app.extensions.get("redis_client")
        if client is not None:
            client.close()


def live_app(database_url: str, **overrides: Any) -> OpenAPI:
    app = create_app({**LIVE_SETTINGS, "database_url": database_url, **overrides})
    app.extensions["ai_provider"] = PacedFakeProvider()
    return app


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver): named by PLAYGROUND_CHROMIUM / PLAYGROUND_CHROMEDRIVER, or found
    on PATH (on GitHub's Ubuntu runners: Chrome on PATH, chromedriver in $CHROMEWEBDRIVER)."""
    runner_drivers = os.environ.get("CHROMEWEBDRIVER")
    browsers = [os.environ.get("PLAYGROUND_CHROMIUM")]
    browsers += [shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")]
    drivers = [os.environ.get("PLAYGROUND_CHROMEDRIVER"), shutil.which("chromedriver")]
    drivers.append(str(Path(runner_drivers) / "chromedriver") if runner_drivers else None)
    chromium = next((path for path in browsers if path and Path(path).is_file()), None)
    chromedriver = next((path for path in drivers if path and Path(path).is_file()), None)
    return (chromium, chromedriver) if chromium and chromedriver else None


# One line for the whole module when there is no browser; under CI=true a failure instead.
BROWSER = find_browser()
if BROWSER is None:
    missing = f"no Chromium or chromedriver; {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"playground browser tests cannot run under CI=true: {missing}", pytrace=False)
    pytest.skip(f"playground browser tests skipped: {missing}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for these tests. Both binaries are given explicitly, so Selenium
    never looks for (or downloads) a browser or driver of its own."""
    assert BROWSER is not None
    chromium, chromedriver = BROWSER
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_script_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[LiveServer]:
    """The app (testing, PLAYGROUND_ENABLED=true, the offline provider) over real HTTP."""
    live = LiveServer(live_app(database_url))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def screenshot() -> Callable[[WebDriver, str], None]:
    """screenshot(driver, name) saves NN-name.png in PLAYGROUND_SCREENSHOTS, when it is set."""
    folder = os.environ.get("PLAYGROUND_SCREENSHOTS")
    count = iter(range(1, 100))

    def save(driver: WebDriver, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(Path(folder) / f"{next(count):02d}-{name}.png"))

    return save


# -- helpers -------------------------------------------------------------------------------------


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.02).until(condition, f"waiting for {what}")


def text_of(driver: WebDriver, selector: str) -> str:
    """The text of the last element matching `selector` ("" when there is none)."""
    script = (
        "const all = document.querySelectorAll(arguments[0]);"
        "return all.length ? all[all.length - 1].textContent : '';"
    )
    return str(driver.execute_script(script, selector))


def visible(driver: WebDriver, element_id: str) -> bool:
    return bool(driver.find_element(By.ID, element_id).is_displayed())


def open_page(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/playground")
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready"), "the page")


def usage_tokens(driver: WebDriver) -> float:
    return float(driver.find_element(By.ID, "usage-meter").get_attribute("value") or 0)


def send(driver: WebDriver, prompt: str) -> int:
    """Type and send `prompt`; returns how many replies were on the page before."""
    before = len(driver.find_elements(By.CSS_SELECTOR, ".message.assistant"))
    field = driver.find_element(By.ID, "prompt")
    field.send_keys(prompt)
    field.send_keys(Keys.CONTROL, Keys.ENTER)  # the keyboard shortcut, as a user would
    return before


def reply_finished(driver: WebDriver, before: int) -> bool:
    replies = driver.find_elements(By.CSS_SELECTOR, ".message.assistant")
    return len(replies) > before and replies[-1].get_attribute("aria-busy") is None
{%- if cookiecutter.use_auth %}


def register_through_api(base: str) -> str:
    """A new user, registered with a plain HTTP call; returns the email."""
    email = f"browser-{uuid4().hex[:10]}@example.com"
    body = json.dumps({"email": email, "password": PASSWORD, "full_name": "Browser"}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{base}/api/v1/auth/register",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WAIT) as response:  # noqa: S310 - loopback
        assert response.status == 201
    return email


def sign_in(driver: WebDriver, email: str, password: str, button: str = "log-in") -> None:
    driver.find_element(By.ID, "email").clear()
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").clear()
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, button).click()
{%- endif %}


# -- the tests -----------------------------------------------------------------------------------


def test_chat_streams_structured_output_and_usage(
    browser: WebDriver, server: LiveServer, screenshot: Callable[[WebDriver, str], None]
) -> None:
    driver = browser
    open_page(driver, server.url)
    assert "playground" in driver.title
{%- if cookiecutter.use_auth %}
    assert visible(driver, "sign-in")
    screenshot(driver, "sign-in")

    email = register_through_api(server.url)
    sign_in(driver, email, "not-the-password")
    wait_for(driver, lambda d: visible(d, "notice"), "the refusal")
    notice = driver.find_element(By.ID, "notice").text
    assert notice.startswith("Invalid email or password.")
    assert "{" not in notice
    sign_in(driver, email, PASSWORD)
    wait_for(driver, lambda d: visible(d, "workspace"), "the signed-in page")
    assert email in driver.find_element(By.ID, "who").text
{%- else %}
    wait_for(driver, lambda d: visible(d, "workspace"), "the chat")
    assert not driver.find_elements(By.ID, "sign-in")
    assert "No sign-in" in driver.find_element(By.ID, "who").text
{%- endif %}
    wait_for(driver, lambda d: "used today" in d.find_element(By.ID, "usage-text").text, "usage")
    assert usage_tokens(driver) == 0
    assert not visible(driver, "tools")  # no /ai/tools on this service yet
    screenshot(driver, "ready")

    # The reply grows in the page as the chunks arrive.
    before = send(driver, PROMPT)
    seen: list[str] = []
    mid_stream_shot = False
    deadline = time.monotonic() + WAIT
    while not reply_finished(driver, before) and time.monotonic() < deadline:
        text = text_of(driver, ".message.assistant .text")
        if text and (not seen or text != seen[-1]):
            seen.append(text)
            if len(seen) == 3 and not mid_stream_shot:
                screenshot(driver, "streaming")
                mid_stream_shot = True
        time.sleep(0.01)
    final = text_of(driver, ".message.assistant .text")
    assert final == f"(offline reply) You said: {PROMPT}"
    partial = [text for text in seen if text != final]
    assert len(partial) >= 2, f"the reply did not arrive in steps: {seen}"
    assert all(final.startswith(text) for text in partial)
    assert "offline provider" in text_of(driver, ".message.assistant .warning")
    assert "tokens" in text_of(driver, ".message.assistant .meta")

    # Usage is read again after the reply.
    wait_for(driver, lambda d: usage_tokens(d) > 0, "the usage meter to move")
    assert "used today" in driver.find_element(By.ID, "usage-text").text
    screenshot(driver, "replied")

    # Structured output: a JSON Schema, and the parsed reply shown.
    used = usage_tokens(driver)
    driver.find_element(By.CSS_SELECTOR, "#structured summary").click()
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["answer", "confidence"],
    }
    driver.find_element(By.ID, "schema").send_keys(json.dumps(schema))
    before = send(driver, "Answer as JSON")
    wait_for(driver, lambda d: reply_finished(d, before), "the structured reply")
    parsed = json.loads(text_of(driver, ".message.assistant .parsed"))
    assert set(parsed) == {"answer", "confidence"}
    wait_for(driver, lambda d: usage_tokens(d) > used, "the usage meter to move again")
    screenshot(driver, "structured")
    driver.find_element(By.ID, "schema").clear()

    # A conversation: created, listed, and named after its first message.
    driver.find_element(By.ID, "new-conversation").click()
    wait_for(driver, lambda d: "New conversation" in d.find_element(By.ID, "chat-title").text, "it")
    before = send(driver, "Remember this conversation")
    wait_for(driver, lambda d: reply_finished(d, before), "the reply in the conversation")
    wait_for(
        driver,
        lambda d: "Remember this conversation" in d.find_element(By.ID, "conversations").text,
        "the conversation in the list",
    )
    assert "Remember this conversation" in driver.find_element(By.ID, "chat-title").text
    assert not driver.find_elements(By.CSS_SELECTOR, ".message.failed")

    # Readable on a phone: nothing wider than 375 px.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at 375 px"
        screenshot(driver, "narrow")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_budget_exceeded_reads_as_a_message(
    browser: WebDriver,
    database_url: str,
    screenshot: Callable[[WebDriver, str], None],
) -> None:
    """A budget of one token: the first call crosses the line and completes, the next is refused
    with 429 `budget_exceeded`, shown as a sentence with the time to wait."""
    live = LiveServer(live_app(database_url, ai_token_budget_daily=1))
    try:
        driver = browser
        open_page(driver, live.url)
{%- if cookiecutter.use_auth %}
        email = f"budget-{uuid4().hex[:10]}@example.com"
        sign_in(driver, email, PASSWORD, button="register")  # registering from the page itself
{%- endif %}
        wait_for(driver, lambda d: visible(d, "workspace"), "the chat")
        before = send(driver, "First question")
        wait_for(driver, lambda d: reply_finished(d, before), "the first reply")
        assert not driver.find_elements(By.CSS_SELECTOR, ".message.failed")

        before = send(driver, "Second question")
        wait_for(driver, lambda d: reply_finished(d, before), "the refusal")
        error = text_of(driver, ".message.failed .error")
        assert error.startswith("The daily token budget is used up. Try again in ")
        assert "Retry-After:" in error
        assert error.endswith("[budget_exceeded]")
        assert "{" not in error
        wait_for(driver, lambda d: "0 left" in d.find_element(By.ID, "usage-text").text, "usage")
        screenshot(driver, "budget-exceeded")
    finally:
        live.stop()
