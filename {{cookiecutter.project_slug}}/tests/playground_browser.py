"""Fixtures and helpers for the playground in a real browser: headless Chromium, driven by
Selenium, against the app served over HTTP on a loopback port with the offline provider.

Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`), found on
PATH or named by PLAYGROUND_CHROMIUM and PLAYGROUND_CHROMEDRIVER; without them the tests that use
`browser` skip, and fail under CI=true. With PLAYGROUND_SCREENSHOTS=DIR a PNG of each state is
saved in DIR.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from flask_openapi3 import OpenAPI
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.ai.base import ChatRequest, StreamChunk
from {{ cookiecutter.package_name }}.ai.providers.fake import FakeProvider

from .ports import spare_port

# What the live app runs with beyond the test settings: the offline provider, generous limits.
LIVE_SETTINGS: dict[str, Any] = {
    "rate_limit_ai": "10000 per minute",
    "ai_provider": "fake",
    "playground_enabled": True,
}
PASSWORD = "correct-horse-battery"  # of every user the page registers

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
    # werkzeug writes a response's headers and body separately: with Nagle's algorithm on,
    # every keep-alive response after the first would wait for the browser's delayed ACK.
    disable_nagle_algorithm = True

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
        for extension in self.app.extensions.values():
            if isinstance(extension, Engine):  # the app's and any feature's own
                extension.dispose()
        client = self.app.extensions.get("redis_client")
        if client is not None:
            client.close()


def live_app(settings: dict[str, Any], database_url: str, **overrides: Any) -> OpenAPI:
    app = create_app({**settings, **LIVE_SETTINGS, "database_url": database_url, **overrides})
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


BROWSER = find_browser()


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the browser tests. Both binaries are given explicitly, so Selenium
    never looks for (or downloads) a browser or driver of its own. Without them: a skip, or under
    CI=true a failure."""
    if BROWSER is None:
        missing = f"no Chromium or chromedriver; {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            message = f"playground browser tests cannot run under CI=true: {missing}"
            pytest.fail(message, pytrace=False)
        pytest.skip(f"playground browser tests skipped: {missing}")
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
    service = Service(executable_path=chromedriver, port=spare_port())
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def start_server(test_settings: dict[str, Any], database_url: str) -> Callable[..., LiveServer]:
    """start_server(**overrides): the app (testing, PLAYGROUND_ENABLED=true, the offline provider)
    over real HTTP; stop() it when done."""
    return lambda **overrides: LiveServer(live_app(test_settings, database_url, **overrides))


@pytest.fixture(scope="session")
def server(start_server: Callable[..., LiveServer]) -> Iterator[LiveServer]:
    """The app over real HTTP, for the whole session."""
    live = start_server()
    yield live
    live.stop()


@pytest.fixture(scope="session")
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


def enter_chat(driver: WebDriver) -> None:
    """From the opened page to the chat: when the page asks to sign in first, a new user registers
    through its form."""
    if driver.find_elements(By.ID, "sign-in"):
        fill_sign_in(driver, f"browser-{uuid4().hex[:10]}@example.com", PASSWORD, button="register")
    wait_for(driver, lambda d: visible(d, "workspace"), "the chat")


def fill_sign_in(driver: WebDriver, email: str, password: str, button: str = "log-in") -> None:
    driver.find_element(By.ID, "email").clear()
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").clear()
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, button).click()
