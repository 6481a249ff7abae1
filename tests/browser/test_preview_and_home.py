"""The preview and home pages in a real browser: the preview page follows a render without
reloading itself (its JSON state, then one reload when ready) and links its three players;
the home page fits a 390 px phone, its buttons say when they are busy, and every control's
keyboard focus ring is visible (at least 3:1 against white and the page)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.browser.conftest import PYTHON, Studio
from tests.conftest import REPO, TINY_CLIP

# Where the focused element is, and its focus ring's contrast (WCAG relative luminance).
FOCUS_INFO = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const css = getComputedStyle(el);
  const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgba(c).slice(0, 3).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
                            return (x + 0.05) / (y + 0.05); };
  const alpha = rgba(css.outlineColor)[3];
  return {key: el.id || (el.dataset && (el.dataset.mode || el.dataset.active)) ||
                (el.textContent || "").trim().slice(0, 40) || el.tagName,
          tag: el.tagName.toLowerCase(), style: css.outlineStyle,
          width: parseFloat(css.outlineWidth), opaque: alpha === undefined || alpha === 1,
          white: ratio(css.outlineColor, "rgb(255, 255, 255)"),
          page: ratio(css.outlineColor, getComputedStyle(document.body).backgroundColor)};
}"""


def tab_stops(page: Any, presses: int = 60) -> list[dict[str, Any] | None]:
    """Press Tab from the top of the page until focus leaves the page's last control (to the
    browser's own UI: None) or `presses` run out; where focus went each time."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
    stops: list[dict[str, Any] | None] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(FOCUS_INFO))
        if stops[-1] is None and len(stops) > 1:
            break
    return stops


def faint_rings(stops: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Tab stops whose focus ring is missing, thin, see-through or under 3:1."""
    return [s for s in stops if s is not None and (
        s["style"] in ("none", "hidden") or s["width"] < 2 or not s["opaque"]
        or s["white"] < 3 or s["page"] < 3)]


def _django(studio: Studio, code: str, *args: str) -> str:
    """Run `code` with the server's settings and data folder (what a worker would write)."""
    done = subprocess.run([PYTHON, "-c", "import django, sys\ndjango.setup()\n" + code,
                           *args], cwd=REPO, env=studio.env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


NEW_PREVIEW = """
from webapp.studio.models import Preview, Search
search = Search.objects.get(pk=int(sys.argv[1]))
preview = Preview.objects.create(search=search, candidate="trial-1", mode="measured",
                                 status="running", frames_done=2, frames_total=15)
print(preview.pk)
"""
PROGRESS = """
from webapp.studio.models import Preview
Preview.objects.filter(pk=int(sys.argv[1])).update(frames_done=int(sys.argv[2]))
"""
RENDERED = """
import torch
from engine.data.enhancement import make_task
from engine.deploy.render import render_preview
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from tests.conftest import TINY_CLIP
from webapp.studio.models import Preview

preview = Preview.objects.get(pk=int(sys.argv[1]))
torch.manual_seed(1)
net = build_network(Genome.uniform(8, 1), 2)
result = render_preview(net, make_task("sr_x2"), TINY_CLIP, preview.folder, mode="measured",
                        max_frames=15)
result.pop("files", None)
Preview.objects.filter(pk=preview.pk).update(status="ready", result=result, frames_done=15)
"""


WIDER_THAN_VIEWPORT = """() => Array.from(document.querySelectorAll('body *'))
    .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .map((el) => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)
    .slice(0, 10)"""


def _times(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("""() => ['pv-input', 'pv-output', 'pv-reference'].map((id) => {
        const v = document.getElementById(id);
        return {t: v.currentTime, paused: v.paused, rate: v.playbackRate};
    })""")


def _spread(times: list[dict[str, Any]]) -> float:
    return max(t["t"] for t in times) - min(t["t"] for t in times)


def test_preview_page_follows_its_render_and_links_its_players(
        studio: Studio, page: Any, shots: Any, browser: Any, storage_state: str) -> None:
    from tests.browser.test_content_security_policy import tour_under_policy

    search = studio.new_search("preview page")
    preview = int(_django(studio, NEW_PREVIEW, str(search)).split()[-1])
    page.goto(f"{studio.url}/previews/{preview}/")
    assert page.locator("meta[http-equiv=refresh]").count() == 0  # no reloading loop
    progress = page.locator("#pv-progress")
    # The session's clip is the 48-frame sample; this preview renders its first 15.
    assert progress.inner_text() == "Rendering the first 15 of 48 frames: 2 done."
    assert page.locator("h1").inner_text() == "trial-1"  # the buttons are not in the heading
    page.evaluate("() => { window.notReloaded = true; }")

    _django(studio, PROGRESS, str(preview), "7")
    page.wait_for_function("document.getElementById('pv-progress').dataset.done === '7'",
                           timeout=10000)
    assert progress.inner_text() == "Rendering the first 15 of 48 frames: 7 done."
    assert page.evaluate("() => window.notReloaded === true")  # updated in place
    url = f"{studio.url}/previews/{preview}/"
    assert not tour_under_policy(browser, storage_state, url, "#pv-progress")  # preview.js

    _django(studio, RENDERED, str(preview))
    page.wait_for_selector("#pv-output", timeout=15000)  # one reload, when it is ready
    assert page.evaluate("() => window.notReloaded === undefined")
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    assert page.locator("h1").inner_text() == "trial-1"
    assert page.locator("#pv-coverage").inner_text() == "the first 15 of 48 frames"
    page.wait_for_function("""['pv-input', 'pv-output', 'pv-reference'].every(
        (id) => document.getElementById(id).readyState >= 2)""", timeout=15000)
    page.screenshot(path=str(shots / "preview.png"), full_page=True)
    assert not tour_under_policy(browser, storage_state, url, "#pv-output")

    # A seek on one player moves the other two.
    page.evaluate("() => { document.getElementById('pv-input').currentTime = 0.3; }")
    page.wait_for_function("""['pv-output', 'pv-reference'].every((id) =>
        Math.abs(document.getElementById(id).currentTime - 0.3) < 0.1)""", timeout=5000)
    assert _spread(_times(page)) < 0.1

    # Play on one plays all (slowed down: the tiny clip lasts 0.6 s), within 0.1 s.
    page.evaluate("""() => { const v = document.getElementById('pv-reference');
                            v.currentTime = 0; v.playbackRate = 0.25; v.play(); }""")
    page.wait_for_function("""['pv-input', 'pv-output', 'pv-reference'].every(
        (id) => !document.getElementById(id).paused)""", timeout=5000)
    samples = []
    for _ in range(8):
        page.wait_for_timeout(150)
        samples.append(_times(page))
    for times in samples:
        assert all(t["rate"] == 0.25 for t in times), times
        assert _spread(times) < 0.1, times
    assert samples[-1][0]["t"] > samples[0][0]["t"]  # it really played
    # Pause on one pauses all, on one frame.
    page.evaluate("() => document.getElementById('pv-output').pause()")
    page.wait_for_function("""['pv-input', 'pv-output', 'pv-reference'].every(
        (id) => document.getElementById(id).paused)""", timeout=5000)
    page.wait_for_timeout(200)
    assert _spread(_times(page)) < 0.1

    # On a phone the players stack and nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "preview-390.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, page.evaluate(
        WIDER_THAN_VIEWPORT)


@pytest.fixture
def phone(browser: Any, storage_state: str) -> Any:
    from tests.browser.conftest import guarded_page

    context = browser.new_context(storage_state=storage_state, bypass_csp=True,
                                  viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    with guarded_page(context) as page:
        yield page




def test_home_page_fits_a_phone(studio: Studio, phone: Any, shots: Any) -> None:
    phone.goto(studio.url + "/")
    phone.wait_for_load_state("networkidle")
    phone.screenshot(path=str(shots / "home-390.png"), full_page=True)
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, phone.evaluate(WIDER_THAN_VIEWPORT)


def test_home_buttons_say_they_are_busy(studio: Studio, page: Any) -> None:
    page.goto(studio.url + "/")
    # The sample clip: the post itself is held back here (it would add a clip to the session).
    page.evaluate("""() => document.querySelector('form[data-busy-form]')
        .addEventListener('submit', (e) => e.preventDefault())""")
    sample = page.locator("form[data-busy-form] button[type=submit]")
    sample.click()
    assert sample.is_disabled() and sample.inner_text() == "Preparing the sample…"
    assert sample.get_attribute("aria-busy") == "true"

    # The upload: the request is held back (never sent), the page shows what it would do.
    page.evaluate("() => { XMLHttpRequest.prototype.send = function () {}; }")
    page.set_input_files("form.upload-form input[type=file]", str(TINY_CLIP))
    upload = page.locator("form.upload-form button[type=submit]")
    assert not page.locator(".upload-status").is_visible()  # no empty bar before an upload
    upload.click()
    assert upload.is_disabled() and upload.inner_text() == "Uploading…"
    assert page.locator("form.upload-form").get_attribute("aria-busy") == "true"
    assert page.locator(".upload-status").is_visible()
    assert page.locator(".upload-status .progress-label").inner_text().startswith("Uploading")


def test_home_focus_ring_is_visible_on_every_control(studio: Studio, page: Any) -> None:
    page.goto(studio.url + "/")
    stops = tab_stops(page)
    reached = [s for s in stops if s is not None]
    assert stops[0] is not None and len(reached) >= 8, stops  # focus leaves the body
    keys = [s["key"] for s in reached]
    assert keys.index("Upload clip") < keys.index("Try the sample clip"), keys
    assert not faint_rings(reached), json.dumps(faint_rings(reached), indent=1)
