"""The comparison page in a real browser: wipe, frame stepping, synced zoom, the PSNR
timeline, jump-to-worst and URL restore, on two previews rendered for real on the tiny clip."""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import PYTHON, Studio
from tests.conftest import REPO

MAKE_PREVIEWS = r"""
import json, sys
import django
django.setup()
import torch
from engine.data.enhancement import make_task
from engine.deploy.render import render_preview
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from tests.conftest import TINY_CLIP
from webapp.studio.models import Preview, Search

search = Search.objects.get(pk=int(sys.argv[1]))
ids = []
for seed, name in ((1, "trial-1"), (2, "trial-2")):
    torch.manual_seed(seed)
    net = build_network(Genome.uniform(8, 1), 2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05 * seed)
    preview = Preview.objects.create(search=search, candidate=name, mode="measured")
    result = render_preview(net, make_task("sr_x2"), TINY_CLIP, preview.folder,
                            mode="measured", max_frames=15)
    result.pop("files", None)
    Preview.objects.filter(pk=preview.pk).update(status="ready", result=result)
    ids.append({"id": preview.pk, "result": result})
print("RESULT " + json.dumps(ids))
"""


@pytest.fixture(scope="module")
def compared(studio: Studio, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A search with two ready, measured previews (rendered on disk by a subprocess with the
    studio's environment: same data folder as the server under test)."""
    env = studio.env
    search = studio.new_search("compare")
    done = subprocess.run([PYTHON, "-c", MAKE_PREVIEWS, str(search)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return {"search": search, "previews": json.loads(line[7:])}


def _wait_frame(page: Any, n: int) -> None:
    page.wait_for_selector(f"#cmp-root[data-drawn='{n}']", timeout=20000)


def _pixels(page: Any, selector: str, fx: float, fy: float = 0.5) -> list[int]:
    return page.evaluate("""([sel, fx, fy]) => {
        const c = document.querySelector(sel);
        const x = Math.floor(c.width * fx), y = Math.floor(c.height * fy);
        return Array.from(c.getContext('2d').getImageData(x - 4, y - 4, 8, 8).data);
    }""", [selector, fx, fy])


def _params(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_compare_page_runs_under_the_content_security_policy(
        studio: Studio, compared: dict[str, Any], browser: Any, storage_state: str) -> None:
    from tests.browser.test_content_security_policy import tour_under_policy

    ids = ",".join(str(p["id"]) for p in compared["previews"][:2])
    url = f"{studio.url}/searches/{compared['search']}/compare?c={ids}"
    problems = tour_under_policy(browser, storage_state, url, "#cmp-root[data-drawn='0']")
    assert not problems, "\n".join(problems)


def test_compare_page(studio: Studio, compared: dict[str, Any], page: Any, shots: Any) -> None:
    ids = [p["id"] for p in compared["previews"]]
    base = f"{studio.url}/searches/{compared['search']}/compare"
    page.goto(f"{base}?c={ids[0]},{ids[1]}&mode=wipe&wipe=0.5")
    _wait_frame(page, 0)
    canvas = "#cmp-stage canvas"
    page.screenshot(path=str(shots / "compare-wipe.png"), full_page=True)

    # The wipe moves: the strip between 0.2 and 0.5 switches from reference to candidate.
    before = _pixels(page, canvas, 0.35)
    box = page.locator(canvas).bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3, steps=5)
    page.mouse.up()
    page.wait_for_function("new URLSearchParams(location.search).get('wipe') === '0.200'")
    assert _pixels(page, canvas, 0.35) != before
    page.screenshot(path=str(shots / "compare-wipe-moved.png"), full_page=True)

    # A frame step changes the picture and the URL.
    frame0 = _pixels(page, canvas, 0.7)
    page.click("#cmp-next")
    _wait_frame(page, 1)
    page.wait_for_function("new URLSearchParams(location.search).get('frame') === '1'")
    page.keyboard.press("ArrowRight")
    _wait_frame(page, 2)
    assert _pixels(page, canvas, 0.7) != frame0
    assert page.locator("#cmp-timeline").get_attribute("data-marker") == "2"

    # Jump to worst frame lands on argmin PSNR of the active candidate.
    per_frame = compared["previews"][0]["result"]["per_frame"]
    worst = min(per_frame, key=lambda f: f["psnr"])["index"]
    page.click("#cmp-worst")
    _wait_frame(page, worst)
    assert page.locator("#cmp-timeline").get_attribute("data-marker") == str(worst)
    assert _params(page)["frame"] == str(worst)

    # Side by side: zoom is synced across every panel.
    page.click("[data-mode=side]")
    panels = page.locator("#cmp-stage canvas")
    assert panels.count() == 3
    page.click("#cmp-1to1")
    first = panels.nth(1).bounding_box()
    page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_timeout(200)
    zooms = {panels.nth(i).get_attribute("data-zoom") for i in range(3)}
    assert len(zooms) == 1 and float(zooms.pop()) > 1.0
    page.screenshot(path=str(shots / "compare-side.png"), full_page=True)

    # ] switches the active candidate; diff mode draws; the URL restores it all.
    page.keyboard.press("]")
    page.click("[data-mode=diff]")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "compare-diff.png"), full_page=True)
    saved = _params(page)
    assert saved["mode"] == "diff" and saved["active"] == "1"
    assert saved["c"] == f"{ids[0]},{ids[1]}"
    page.reload()
    _wait_frame(page, worst)
    restored = _params(page)
    for key in ("c", "ref", "frame", "zoom", "wipe", "mode", "active", "x", "y"):
        assert restored[key] == saved[key], key
    assert page.locator("#cmp-stage canvas").get_attribute("data-zoom").startswith(
        saved["zoom"][:4])
    assert page.locator("#cmp-timeline").get_attribute("data-marker") == str(worst)


def test_compare_other_previews_404(studio: Studio, compared: dict[str, Any],
                                    page: Any) -> None:
    url = f"{studio.url}/searches/{compared['search']}/compare"
    assert page.request.get(url + "?c=999999").status == 404  # no console 404 this way
    assert page.request.get(url).status == 200


def test_compare_page_keyboard_path(studio: Studio, compared: dict[str, Any], page: Any,
                                    shots: Any) -> None:
    """Tab walks the page's controls in order with a visible ring (no trap); [ and ] switch
    the candidate wherever focus is, arrows step frames, Space on a button presses it."""
    from tests.browser.test_preview_and_home import faint_rings, tab_stops

    ids = [p["id"] for p in compared["previews"]]
    page.goto(f"{studio.url}/searches/{compared['search']}/compare?c={ids[0]},{ids[1]}")
    _wait_frame(page, 0)
    stops = [s for s in tab_stops(page) if s is not None]
    keys = [s["key"] for s in stops]
    controls = ["wipe", "side", "diff", "cmp-ref", "0", "1", "cmp-stage", "cmp-prev",
                "cmp-play", "cmp-next", "cmp-worst", "cmp-fit", "cmp-1to1"]
    assert all(c in keys for c in controls), keys
    assert [k for k in keys if k in controls] == controls  # in the page's order
    assert not faint_rings(stops), faint_rings(stops)
    assert _params(page)["active"] == "0"  # Tab never switched the candidate

    page.focus("#cmp-stage")
    page.keyboard.press("]")
    page.wait_for_function("new URLSearchParams(location.search).get('active') === '1'")
    page.keyboard.press("ArrowRight")
    _wait_frame(page, 1)
    page.keyboard.press("[")
    page.wait_for_function("new URLSearchParams(location.search).get('active') === '0'")
    # On a focused button the keys still switch candidates, and focus stays where it was.
    page.focus("#cmp-fit")
    page.keyboard.press("]")
    page.wait_for_function("new URLSearchParams(location.search).get('active') === '1'")
    assert page.evaluate("() => document.activeElement.id") == "cmp-fit"
    assert page.locator("[data-active='1']").get_attribute("aria-pressed") == "true"
    # Space on a focused button presses that button (here: the next frame), not Play.
    page.focus("#cmp-next")
    page.keyboard.press(" ")
    _wait_frame(page, 2)
    assert page.locator("#cmp-play").inner_text() == "Play"
    assert "[" in page.locator("#cmp-keys").inner_text()  # the keys are on the page

    # On a phone the toolbar wraps and nothing scrolls sideways.
    from tests.browser.test_preview_and_home import WIDER_THAN_VIEWPORT

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(400)
    page.screenshot(path=str(shots / "compare-390.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, page.evaluate(
        WIDER_THAN_VIEWPORT)
