"""Signing in to the playground: its module listed and served, and in a real browser (see
playground_browser.py) a refused password, a sign-in and a sign-out."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from uuid import uuid4

from flask_openapi3 import OpenAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from .playground_browser import (
    PASSWORD,
    WAIT,
    LiveServer,
    fill_sign_in,
    open_page,
    visible,
    wait_for,
)


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


def test_the_sign_in_module_is_listed_and_served(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(playground_enabled=True).test_client()

    listed = client.get("/playground/modules")
    assert listed.status_code == 200
    assert listed.json == {"modules": ["/playground/assets/signin.js"]}
    script = client.get("/playground/assets/signin.js")
    assert script.mimetype == "text/javascript"
    assert "export function install" in script.text
    assert client.get("/playground/assets/signin.css").mimetype == "text/css"


def test_sign_in_refuses_a_wrong_password_then_signs_in_and_out(
    browser: WebDriver, server: LiveServer, screenshot: Callable[[WebDriver, str], None]
) -> None:
    driver = browser
    open_page(driver, server.url)
    assert visible(driver, "sign-in")
    assert not visible(driver, "workspace")
    screenshot(driver, "sign-in")

    email = register_through_api(server.url)
    fill_sign_in(driver, email, "not-the-password")
    wait_for(driver, lambda d: visible(d, "notice"), "the refusal")
    notice = driver.find_element(By.ID, "notice").text
    assert notice.startswith("Invalid email or password.")
    assert "{" not in notice
    fill_sign_in(driver, email, PASSWORD)
    wait_for(driver, lambda d: visible(d, "workspace"), "the signed-in page")
    assert email in driver.find_element(By.ID, "who").text
    assert not visible(driver, "sign-in")

    driver.find_element(By.ID, "sign-out").click()
    wait_for(driver, lambda d: visible(d, "sign-in"), "the sign-in form again")
    assert not visible(driver, "workspace")
    assert driver.find_element(By.ID, "notice").text == "Signed out."
