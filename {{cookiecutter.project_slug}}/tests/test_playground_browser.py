"""The playground in a real browser (see playground_browser.py): a reply streamed into the page,
structured output, conversations, usage, a phone-sized screen and a refused call."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from .playground_browser import (
    PROMPT,
    WAIT,
    LiveServer,
    enter_chat,
    open_page,
    reply_finished,
    send,
    text_of,
    usage_tokens,
    visible,
    wait_for,
)

# -- the tests -----------------------------------------------------------------------------------


def test_chat_streams_structured_output_and_usage(
    browser: WebDriver, server: LiveServer, screenshot: Callable[[WebDriver, str], None]
) -> None:
    driver = browser
    open_page(driver, server.url)
    assert "playground" in driver.title
    enter_chat(driver)
    assert driver.find_element(By.ID, "who").text  # who is using it: a user, or anyone here
    wait_for(driver, lambda d: "used today" in d.find_element(By.ID, "usage-text").text, "usage")
    assert usage_tokens(driver) == 0
    wait_for(driver, lambda d: visible(d, "tools"), "the tools picker")  # the service has tools
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

    # A tool step: the model calls current_time (the offline provider calls an offered tool the
    # question names), and the step and its result show above the answer.
    tool_box = "#tool-list input[value='current_time']"
    driver.find_element(By.CSS_SELECTOR, tool_box).click()
    before = send(driver, "What time is it? Use current_time")
    wait_for(driver, lambda d: reply_finished(d, before), "the reply with a tool step")
    assert text_of(driver, ".message.assistant .step").startswith("current_time(")
    assert '"timezone"' in text_of(driver, ".message.assistant .step-result")
    assert "current_time returned" in text_of(driver, ".message.assistant .text")
    screenshot(driver, "tool-step")
    driver.find_element(By.CSS_SELECTOR, tool_box).click()

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
    start_server: Callable[..., LiveServer],
    screenshot: Callable[[WebDriver, str], None],
) -> None:
    """A budget of one token: the first call crosses the line and completes, the next is refused
    with 429 `budget_exceeded`, shown as a sentence with the time to wait."""
    live = start_server(ai_token_budget_daily=1)
    try:
        driver = browser
        open_page(driver, live.url)
        enter_chat(driver)
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
