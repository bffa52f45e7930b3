"""Browser tests: Playwright drives Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import skip_or_fail

CHROMIUM = os.environ.get("MAILADMIN_CHROMIUM", "/usr/bin/chromium")
# Playwright's sync API runs an event loop in this thread; the Django test code around it
# is still synchronous, so tell Django's async-safety guard that this is intended.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def _browser() -> Iterator:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        skip_or_fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(_browser) -> Iterator:
    context = _browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def login(page, live_server, name: str, password: str) -> None:
    """Log in through the real form and land on the dashboard."""
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def mark_document(page) -> None:
    """Tag the loaded document; `same_document(page)` is then true until a full page load.

    Proves that htmx swapped an answer into the page instead of the browser navigating.
    """
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


@pytest.fixture
def page_problems(browser_page) -> list[str]:
    """Everything the browser complains about while the test runs: Content-Security-Policy
    violations (the DOM event), console errors and uncaught script errors."""
    problems: list[str] = []
    page = browser_page

    def violation(_source, detail: dict) -> None:
        problems.append(
            "CSP {directive} blocked {blocked} at {file}:{line}".format(
                directive=detail["directive"],
                blocked=detail["blocked"],
                file=detail["file"],
                line=detail["line"],
            )
        )

    page.expose_binding("__cspViolation", violation)
    page.add_init_script(
        """document.addEventListener("securitypolicyviolation", (e) => {
          window.__cspViolation({directive: e.violatedDirective, blocked: e.blockedURI,
                                 file: e.sourceFile, line: e.lineNumber});
        });"""
    )

    def console(message) -> None:
        # Chromium asks for /favicon.ico on its own when a page names no icon.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            problems.append(f"console error: {message.text} ({message.location['url']})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    return problems
