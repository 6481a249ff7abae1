"""The Content-Security-Policy holds in a real Chromium: injected inline code does not run.

Every other browser test loads its pages through `guarded_page`, which fails on any console
error, so a page of the studio that needed inline script or style would fail there (Chromium
logs each refusal as an error). This test shows the policy is really enforced."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Studio


def tour_under_policy(browser: Any, storage_state: str, url: str, ready: str) -> list[str]:
    """Load `url` with the policy enforced (no bypass), wait for `ready` (a selector: no
    eval), then let it run a moment; returns the console errors and page errors."""
    context = browser.new_context(storage_state=storage_state,
                                  viewport={"width": 1360, "height": 1000})
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(url)
        page.wait_for_selector(ready, timeout=20000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
    finally:
        context.close()
    return problems


@pytest.mark.parametrize("where", ["home", "new search", "search", "clip"])
def test_the_studios_pages_run_under_the_policy(browser: Any, storage_state: str,
                                                studio: Studio, where: str) -> None:
    url, ready = {
        "home": ("/", "main"),
        "new search": (f"/searches/new/?clip={studio.clip}", "form"),
        "search": (f"/searches/{studio.new_search('csp tour', n_trials=2)}/", "#sp-pareto"),
        "clip": (f"/clips/{studio.clip}/", "main"),
    }[where]
    problems = tour_under_policy(browser, storage_state, studio.url + url, ready)
    assert not problems, "\n".join(problems)


def test_injected_inline_script_and_handler_do_not_run(browser: Any, storage_state: str,
                                                       studio: Studio) -> None:
    context = browser.new_context(storage_state=storage_state)
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and refusals.append(m.text))
    page.goto(f"{studio.url}/")
    page.wait_for_load_state("networkidle")
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__inlineRan = true';
        document.body.appendChild(s);
        document.body.insertAdjacentHTML('beforeend',
            '<img alt="" src="/static/no-such.png" onerror="window.__handlerRan = true">');
        document.body.insertAdjacentHTML('beforeend', '<p style="color: red" id="styled">x</p>');
    }""")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__inlineRan === undefined && window.__handlerRan === undefined")
    assert page.evaluate("getComputedStyle(document.getElementById('styled')).color") != \
        "rgb(255, 0, 0)"
    assert refusals, "Chromium reported no refusal: is the policy sent?"
    # The studio's own scripts did run under the same policy (the page is interactive).
    assert page.locator("body").count() == 1
    context.close()
