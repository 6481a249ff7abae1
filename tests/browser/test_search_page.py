"""The live search page in Chromium: trials arrive over the WebSocket without a reload, the
Pareto chart keeps the user's zoom while it updates, tooltips read as words, the table sorts,
filters and selects together with the chart, the first draw shows every row at once and the
socket's "nothing since" redraws none, status events flip the page, and a reload rebuilds
everything from the snapshot (embedded in the page, then brought up to date by the socket's
partial snapshot), and a multi-fidelity search shows its rungs honestly (lower rungs hollow,
verdicts read at the top rung, nothing below bicubic on the front or matched)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Studio

CHART = "Chart.getChart(document.getElementById('sp-pareto'))"
TOOLTIP_WORDS = re.compile(
    r"^#\d+ w\d+_\S+ — \d+\.\d{2} dB PSNR, \d+\.\d{2} G MACs, \d+\.\d{2}\sK params, \d+ ms$")


def open_search(page: Any, studio: Studio, search_id: int) -> None:
    page.goto(f"{studio.url}/searches/{search_id}/")
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "live", timeout=15_000)


def expect_rows(page: Any, n: int) -> None:
    """n trial rows, none of them still running (all their events applied)."""
    expect(page.locator("#sp-rows tr")).to_have_count(n)
    expect(page.locator("#sp-rows tr[data-state='running']")).to_have_count(0)


def axis_range(page: Any) -> list[float]:
    return page.evaluate(f"(() => {{ const c = {CHART}; const x = c.scales.x, y = c.scales.y; "
                         "return [x.min, x.max, y.min, y.max]; })()")


def plotted_trials(page: Any) -> list[int]:
    """Trial numbers drawn as points (front, dominated and lower-rung datasets)."""
    return sorted(page.evaluate(f"(() => {{ const c = {CHART}; return [1, 2, 4].flatMap(i => "
                                "c.data.datasets[i].data.map(p => p.trial)); })()"))


def point_position(page: Any, dataset: int, index: int) -> tuple[float, float]:
    """Viewport coordinates of a drawn point (after its animation settled)."""
    page.locator("#sp-pareto").scroll_into_view_if_needed()
    page.wait_for_timeout(450)
    x, y = page.evaluate(f"(() => {{ const c = {CHART}; const p = "
                         f"c.getDatasetMeta({dataset}).data[{index}]; return [p.x, p.y]; }})()")
    box = page.locator("#sp-pareto").bounding_box()
    return box["x"] + x, box["y"] + y


def shot(page: Any, shots: Path, name: str, **kwargs: Any) -> None:
    if kwargs.get("full_page"):
        page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(0, 0)
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), **kwargs)
    print(f"screenshot: {path}")


def test_trials_arrive_live_with_tooltips_in_words(page: Any, studio: Studio,
                                                   shots: Path) -> None:
    search = studio.new_search("Live arrivals", n_trials=12)
    open_search(page, studio, search)
    expect(page.locator("#sp-table-empty")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    studio.driver("baselines", search=search)
    studio.driver("progress", search=search, number=0, step=300, steps=600, loss=0.0213)
    expect(page.locator("#sp-current")).to_contain_text("current trial: step 300 / 600")
    studio.driver("trials", search=search, numbers=list(range(8)), n_trials=12, progress=True,
                  reject=[7])

    expect_rows(page, 8)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    expect(page.locator("#sp-done")).to_have_text("7")  # a rejected genome does not count
    expect(page.locator("#sp-rows tr[data-trial='7']")).to_contain_text("rejected")
    expect(page.locator("#sp-baselines")).to_contain_text("ESPCN")
    expect(page.locator("#sp-best")).to_contain_text("dB")
    assert plotted_trials(page) == list(range(7))
    shot(page, shots, "01-live-arrivals", full_page=True)

    x, y = point_position(page, dataset=1, index=0)
    page.mouse.move(x, y)
    tooltip = page.locator("#sp-tooltip strong")
    expect(tooltip).to_be_visible()
    words = tooltip.inner_text()
    assert TOOLTIP_WORDS.match(words), words
    assert "{" not in words and "psnr" not in words
    shot(page, shots, "02-tooltip", clip=_chart_clip(page))

    x, y = point_position(page, dataset=3, index=0)  # a learned baseline
    page.mouse.move(x, y)
    expect(tooltip).to_contain_text("(baseline) — ")
    expect(tooltip).to_contain_text(" G MACs")


def _chart_clip(page: Any) -> dict[str, float]:
    box = page.locator(".sp-main").bounding_box()
    return {"x": box["x"] - 8, "y": box["y"] - 8, "width": box["width"] + 16,
            "height": box["height"] + 16}


def test_zoom_survives_live_updates(page: Any, studio: Studio, shots: Path) -> None:
    search = studio.new_search("Zoom and update", n_trials=20)
    studio.driver("baselines", search=search)
    studio.driver("trials", search=search, numbers=list(range(8)), n_trials=20, progress=False)
    open_search(page, studio, search)
    expect_rows(page, 8)
    page.wait_for_timeout(400)
    full = axis_range(page)
    chart_id = page.evaluate(f"{CHART}.id")
    expect(page.locator("#sp-zoom-reset")).to_be_disabled()

    # Wheel zoom in around the middle of the plot.
    box = page.locator("#sp-pareto").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
    for _ in range(3):
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(120)
    page.wait_for_timeout(400)
    zoomed = axis_range(page)
    assert zoomed[0] > full[0] and zoomed[1] < full[1], (full, zoomed)
    assert zoomed[3] - zoomed[2] < full[3] - full[2], (full, zoomed)
    expect(page.locator("#sp-zoom-reset")).to_be_enabled()

    # More trials arrive: drawn, marked as new, and the zoom stays where the user put it.
    studio.driver("trials", search=search, numbers=list(range(8, 14)), n_trials=20,
                  progress=False)
    expect_rows(page, 14)
    page.wait_for_timeout(400)
    assert plotted_trials(page) == list(range(14))
    after = axis_range(page)
    assert after == zoomed, (zoomed, after)
    assert page.evaluate(f"{CHART}.id") == chart_id, "the chart was re-created"
    shot(page, shots, "03-zoomed-after-update", clip=_chart_clip(page))

    # Reset: back to a range that holds every point; then a drag-rectangle zoom.
    page.click("#sp-zoom-reset")
    page.wait_for_timeout(400)
    reset = axis_range(page)
    macs = page.evaluate(f"{CHART}.data.datasets.slice(1).flatMap(d => d.data.map(p => p.x))")
    assert reset[0] <= min(macs) and reset[1] >= max(macs)
    expect(page.locator("#sp-zoom-reset")).to_be_disabled()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=8)
    page.mouse.up()
    page.wait_for_timeout(400)
    dragged = axis_range(page)
    assert dragged[0] > reset[0] and dragged[1] < reset[1], (reset, dragged)
    studio.driver("trials", search=search, numbers=[14, 15], n_trials=20, progress=False)
    expect_rows(page, 16)
    page.wait_for_timeout(400)
    assert axis_range(page) == dragged


def test_table_sorts_filters_and_selects_with_the_chart(page: Any, studio: Studio,
                                                        shots: Path) -> None:
    search = studio.new_search("Sort and select", n_trials=12)
    studio.driver("baselines", search=search)
    studio.driver("trials", search=search, numbers=list(range(12)), n_trials=12, progress=False)
    open_search(page, studio, search)
    rows = page.locator("#sp-rows tr")
    expect_rows(page, 12)

    def psnr_column() -> list[float]:
        # textContent, not innerText: rows out of view skip rendering (content-visibility),
        # and Chromium's innerText of a skipped row is empty.
        cells = page.locator("#sp-rows tr td:nth-child(5)").all_text_contents()
        return [float(v) for v in cells]

    page.click("#sp-table th[data-key=psnr] button")
    expect(page.locator("#sp-table th[data-key=psnr]")).to_have_attribute("aria-sort",
                                                                          "descending")
    assert psnr_column() == sorted(psnr_column(), reverse=True)
    page.click("#sp-table th[data-key=psnr] button")
    expect(page.locator("#sp-table th[data-key=psnr]")).to_have_attribute("aria-sort",
                                                                          "ascending")
    assert psnr_column() == sorted(psnr_column())

    # Filter by text over architecture and state; then the front-only toggle.
    page.fill("#sp-filter", "dwsep")
    archs = page.locator("#sp-rows tr td:nth-child(3)").all_text_contents()
    assert archs and all("dwsep" in a for a in archs), archs
    assert len(archs) < 12, "the filter hid no row: pick a word some genomes lack"
    page.fill("#sp-filter", "")
    expect(rows).to_have_count(12)
    page.check("#sp-front-only")
    front = page.evaluate(f"{CHART}.data.datasets[1].data.map(p => p.trial)")
    expect(rows).to_have_count(len(front))
    page.uncheck("#sp-front-only")

    # A row click selects the trial in the table, the detail panel and the chart.
    row = page.locator("#sp-rows tr[data-trial='5']")
    row.click()
    expect(row).to_have_attribute("aria-selected", "true")
    expect(page.locator("#sp-detail")).to_contain_text("#5")
    expect(page.locator("#sp-detail")).to_contain_text("Genome")
    # The page's rows are slim: the genome is read when the detail opens.
    assert page.evaluate("JSON.parse(document.getElementById('sp-snapshot').textContent)"
                         ".trials.every(t => !('genome' in t))")
    expect(page.locator("#sp-detail .sp-genome")).to_contain_text(" channels")
    expect(page.locator("#sp-detail .sp-blocks li").first).to_be_visible()
    # ... and a point click selects its row.
    x, y = point_position(page, dataset=1, index=0)
    page.mouse.click(x, y)
    expect(page.locator(f"#sp-rows tr[data-trial='{front[0]}']")).to_have_attribute(
        "aria-selected", "true")
    expect(page.locator("#sp-detail")).to_contain_text(f"#{front[0]}")
    expect(row).to_have_attribute("aria-selected", "false")
    shot(page, shots, "04-selected", full_page=True)


# Before the page's scripts: every change to the trial table, as MutationObserver records.
WATCH_ROWS = """
window.__rowChanges = [];
new MutationObserver((records) => {
  for (const r of records) {
    const rows = document.getElementById("sp-rows");
    if (rows && rows.contains(r.target)) {
      window.__rowChanges.push(r.type + ":" + (r.attributeName || r.addedNodes.length));
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


def test_first_draw_shows_every_row_at_once_and_the_socket_redraws_none(
        page: Any, studio: Studio) -> None:
    """The embedded snapshot is drawn in one go (rows sorted, formatted, the front marked like
    the chart's); the socket's first message, "nothing since", then changes no row."""
    search = studio.new_search("First draw", n_trials=40)
    studio.driver("baselines", search=search)
    made = studio.driver("trials", search=search, numbers=list(range(40)), n_trials=40,
                         progress=False, reject=[3, 17])["trials"]
    page.add_init_script(WATCH_ROWS)
    open_search(page, studio, search)
    expect_rows(page, 40)
    page.wait_for_timeout(800)  # time for any late redraw to show up

    # One insertion of the 40 rows, and no write to any of them afterwards.
    changes = page.evaluate("window.__rowChanges")
    assert changes == ["childList:40"], changes[:12]

    # A table this short renders whole (a full-page screenshot showed its rows out of view
    # blank): only long tables let rows out of view skip rendering.
    assert page.evaluate("[...new Set([...document.querySelectorAll('#sp-rows > tr')]"
                         ".map(tr => getComputedStyle(tr).contentVisibility))]") == ["visible"]
    numbers = [int(n) for n in page.evaluate(
        "[...document.querySelectorAll('#sp-rows > tr')].map(tr => tr.dataset.trial)")]
    assert numbers == list(range(39, -1, -1))  # newest first, the default sort
    cells = page.locator("#sp-rows tr td:nth-child(5)").all_text_contents()
    psnr = dict(zip(numbers, cells, strict=True))
    for trial in made:
        if trial["number"] in (3, 17):
            assert psnr[trial["number"]] == "—"
        else:
            assert abs(float(psnr[trial["number"]]) - trial["psnr"]) < 0.0051, trial
    expect(page.locator("#sp-rows > tr[data-state='rejected']")).to_have_count(2)
    dotted = sorted(int(n) for n in page.evaluate(
        "[...document.querySelectorAll('#sp-rows tr .sp-front-dot')]"
        ".map(i => i.closest('tr').dataset.trial)"))
    assert dotted == sorted(page.evaluate(f"{CHART}.data.datasets[1].data.map(p => p.trial)"))
    assert plotted_trials(page) == sorted(set(range(40)) - {3, 17})
    # Number columns (1 and 4-10: rung, PSNR...) are aligned by position, the others are not.
    aligns = page.evaluate("[...document.querySelectorAll('#sp-rows tr:first-child td')]"
                           ".map(td => getComputedStyle(td).textAlign)")
    assert [a == "right" for a in aligns] == [True, False, False] + [True] * 7, aligns


def test_status_events_flip_the_page_and_reload_keeps_every_trial(
        page: Any, studio: Studio, shots: Path) -> None:
    search = studio.new_search("Status and reload", n_trials=6)
    open_search(page, studio, search)
    expect(page.locator("#sp-status")).to_have_text("running")
    expect(page.locator("#sp-cancel")).to_be_visible()
    expect(page.locator("#sp-plot")).to_be_hidden()

    studio.driver("baselines", search=search)
    studio.driver("trials", search=search, numbers=list(range(6)), n_trials=6, progress=False)
    expect_rows(page, 6)
    studio.driver("finish", search=search, trained=6)
    expect(page.locator("#sp-status")).to_have_text("finished")
    expect(page.locator("#sp-cancel")).to_be_hidden()
    expect(page.locator("#sp-plot")).to_be_visible()
    expect(page.locator("#sp-bar")).to_have_attribute("aria-valuenow", "6")

    page.reload()
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "live")
    expect_rows(page, 6)
    expect(page.locator("#sp-status")).to_have_text("finished")
    assert plotted_trials(page) == list(range(6))
    shot(page, shots, "05-finished-after-reload", full_page=True)
    page.set_viewport_size({"width": 400, "height": 860})
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways on a phone ({width}px)"
    shot(page, shots, "07-phone", full_page=True)


def test_a_queued_search_says_how_many_jobs_are_ahead_and_whose(page: Any,
                                                                 studio: Studio) -> None:
    ahead = studio.new_search("Running before it", n_trials=2)  # running: ahead of it
    search = studio.new_search("Waiting", n_trials=2)
    open_search(page, studio, search)
    # As the watchdog leaves a search whose workers died: queued again, and it says so.
    studio.driver("status", search=search, status="queued")
    studio.driver("event", search=search, kind="search_revived",
                  payload={"reason": "its worker stopped answering", "silent_seconds": 50})
    # The page re-reads a queued search every 5 s; the count is the server's.
    expect(page.locator("#sp-eta")).to_contain_text("waiting for a worker: ", timeout=15000)
    expect(page.locator("#sp-eta")).to_contain_text("ahead of yours (")
    text = page.locator("#sp-eta").inner_text()
    assert "another user" not in text  # every search of this studio is this user's
    studio.driver("status", search=ahead, status="finished")
    studio.driver("status", search=search, status="finished")


def test_failed_search_shows_its_error_and_offers_resume(page: Any, studio: Studio,
                                                         shots: Path) -> None:
    search = studio.new_search("Failing", n_trials=6)
    open_search(page, studio, search)
    studio.driver("fail", search=search, error="the clip's degraded frames are too small")
    expect(page.locator("#sp-status")).to_have_text("failed")
    expect(page.locator("#sp-error")).to_contain_text("degraded frames are too small")
    expect(page.locator("#sp-resume")).to_be_visible()
    expect(page.locator("#sp-cancel")).to_be_hidden()
    shot(page, shots, "06-failed")


def test_gaps_are_filled_and_a_dropped_socket_reconnects(page: Any, studio: Studio) -> None:
    """Between the page and the server: one trial_finished message is lost (the page reads
    it back from the JSON endpoint), then the socket is closed (the page says "reconnecting",
    reconnects with `?after=` its last event and applies what it missed, so trials sent
    meanwhile are there)."""
    search = studio.new_search("Gaps and reconnects", n_trials=12)
    sockets: list[Any] = []
    lost: list[int] = []

    def relay(ws: Any) -> None:
        server = ws.connect_to_server()
        sockets.append(ws)

        def from_server(message: str | bytes) -> None:
            data = json.loads(message)
            event = data.get("event") or {}
            if event.get("kind") == "trial_finished" and event["trial"]["number"] == 2 \
                    and not lost:
                lost.append(event["seq"])  # never delivered
                return
            ws.send(message)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/ws/searches/"), relay)
    open_search(page, studio, search)
    studio.driver("trials", search=search, numbers=list(range(4)), n_trials=12, progress=False)
    expect_rows(page, 4)
    expect(page.locator("#sp-rows tr[data-trial='2']")).to_contain_text("complete")
    assert lost, "the relay did not drop the message it was meant to"
    assert plotted_trials(page) == [0, 1, 2, 3]

    sockets[0].close()
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#sp-live")).to_have_text("reconnecting…")
    studio.driver("trials", search=search, numbers=[4, 5], n_trials=12, progress=False)
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "live", timeout=15_000)
    expect_rows(page, 6)
    assert len(sockets) >= 2
    # It reconnected from the last event it had applied, not from scratch.
    assert re.search(r"\?after=\d+$", sockets[1].url), sockets[1].url
    studio.driver("trials", search=search, numbers=[6], n_trials=12, progress=False)
    expect_rows(page, 7)
    assert plotted_trials(page) == list(range(7))


def test_cancel_goes_through_the_form_and_the_page_follows(page: Any, studio: Studio) -> None:
    search = studio.new_search("Cancelled", n_trials=8)
    studio.driver("trials", search=search, numbers=[0, 1, 2], n_trials=8, progress=False)
    open_search(page, studio, search)
    with page.expect_navigation():
        page.click("#sp-cancel button")
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "live")
    expect(page.locator("#sp-status")).to_have_text("cancelling")
    expect(page.locator("#sp-cancel")).to_be_hidden()
    studio.driver("finish", search=search, trained=3)  # the worker stops after its trial
    expect(page.locator("#sp-status")).to_have_text("cancelled")
    expect(page.locator("#sp-resume")).to_be_visible()
    expect_rows(page, 3)


# Each chart dataset as drawn: its label, the trials (or baselines) in it, and the resolved
# fill and border of its first point.
DATASETS = f"""(() => {{
  const c = {CHART};
  return c.data.datasets.map((d, i) => {{
    const first = c.getDatasetMeta(i).data[0];
    return {{ label: d.label, trials: d.data.map(p => p.trial), names: d.data.map(p => p.baseline),
             n: d.data.length, fill: first ? first.options.backgroundColor : null,
             border: first ? first.options.borderWidth : null }};
  }});
}})()"""


def _alpha(color: str) -> float:
    """The alpha of a CSS colour as Chart.js resolves it (#rrggbb, rgb() or rgba())."""
    match = re.match(r"rgba\([^)]*,\s*([\d.]+)\)$", color)
    return float(match.group(1)) if match else 1.0


def test_rungs_are_shown_honestly(page: Any, studio: Studio, shots: Path) -> None:
    """A multi-fidelity search (rungs of 300, 1,200 and 4,800 steps): the table says each
    candidate's rung and its PSNR at every rung, a promotion under way, latency measured at
    the top rung only; the chart draws lower-rung results hollow and top-rung ones solid, the
    front from the top rung only and never a result below bicubic; IMDN is a labelled
    reference point and row; a baseline below bicubic is matched by nothing; a learned
    baseline training to the top rung says so; the bar counts evaluations."""
    search = studio.driver("new_search", clip=studio.clip, name="Rungs", n_trials=12,
                           rungs=True)["id"]
    open_search(page, studio, search)
    current = page.locator("#sp-current")

    # ESPCN trains to the top rung before anything else: said as such, not "between trials".
    studio.driver("baseline_progress", search=search, name="espcn", step=1200, steps=4800)
    expect(current).to_contain_text("Training ESPCN to the top rung: step 1,200 / 4,800")
    expect(current).not_to_contain_text("between trials")
    expect(page.locator("#sp-baselines li[data-baseline='espcn']")).to_contain_text("25%")

    studio.driver("baselines", search=search, pretrained=True, below=["espcn"])
    expect(current).not_to_contain_text("Training ESPCN")
    made = studio.driver("trials", search=search, numbers=list(range(12)), n_trials=12,
                         progress=False, rungs=True, below=[5], promoting=[4])
    rows = page.locator("#sp-rows tr")
    expect(rows).to_have_count(12)
    promoting = page.locator("#sp-rows tr[data-trial='4']")
    expect(promoting.locator("td:nth-child(2)")).to_have_text("promoting to rung 3…")
    page.wait_for_timeout(500)  # the chart's update animation

    by_number = {t["number"]: t for t in made["trials"]}
    top = {n for n, t in by_number.items() if t["rung"] == 2}
    lower = set(by_number) - top
    front = made["front"]
    assert front and set(front) <= top and 5 not in front, made

    # The filter reads rungs as the table shows them, 1-based.
    page.fill("#sp-filter", "rung=3")
    expect(rows).to_have_count(len(top))
    page.fill("#sp-filter", "rung<3 state:complete")  # not #4, running on to the top rung
    expect(rows).to_have_count(len(lower - {4}))
    page.fill("#sp-filter", "")
    expect(rows).to_have_count(12)

    # The Rung column: "3/3 · 4,800" and so on; the PSNR at every rung in the tooltip.
    def rung_cell(n: int) -> str:
        return page.locator(f"#sp-rows tr[data-trial='{n}'] td:nth-child(4)").text_content()

    assert rung_cell(0) == "3/3 · 4,800", rung_cell(0)
    assert rung_cell(1) == "2/3 · 1,200", rung_cell(1)
    assert rung_cell(2) == "1/3 · 300", rung_cell(2)
    assert page.locator("#sp-rows tr[data-trial='0'] td:nth-child(4) .sp-ladder i.on").count() == 3
    title = page.locator("#sp-rows tr[data-trial='0'] td:nth-child(5)").get_attribute("title")
    assert re.fullmatch(r"PSNR by rung: 300 steps: \d+\.\d\d dB → 1,200 steps: \d+\.\d\d dB → "
                        r"4,800 steps: \d+\.\d\d dB", title or ""), title
    # Latency is measured at the top rung: none below it, and the cell says why.
    latency = page.locator("#sp-rows tr[data-trial='1'] td:nth-child(9)")
    expect(latency).to_have_text("—")
    expect(latency).to_have_attribute("title", "measured at the top rung")
    assert page.locator("#sp-rows tr[data-trial='0'] td:nth-child(9)").text_content() != "—"

    # The candidate below bicubic: flagged, muted, never on the front (though the cheapest
    # top-rung result, which a front over every result would hold).
    below = page.locator("#sp-rows tr[data-trial='5']")
    expect(below.locator("td:nth-child(2)")).to_have_text("below bicubic")
    expect(below).to_have_class(re.compile(r"\bsp-below-ref\b"))
    expect(below.locator(".sp-front-dot")).to_have_count(0)
    assert by_number[5]["macs"] == min(by_number[n]["macs"] for n in top)

    # The chart: top-rung results solid (front, dominated), lower-rung ones hollow, IMDN a
    # point of its own; the front line joins the top-rung front only.
    sets = page.evaluate(DATASETS)
    assert sorted(sets[1]["trials"]) == sorted(front)
    assert set(sets[2]["trials"]) == top - set(front) and 5 in sets[2]["trials"]
    assert set(sets[4]["trials"]) == lower, sets[4]
    assert _alpha(sets[1]["fill"]) == 1 and _alpha(sets[2]["fill"]) > 0.3, sets
    assert _alpha(sets[4]["fill"]) == 0 and sets[4]["border"] > 1, sets[4]  # hollow: a ring
    assert sets[0]["n"] == len(front)
    assert sets[5]["names"] == ["imdn"], sets[5]
    dotted = sorted(int(n) for n in page.evaluate(
        "[...document.querySelectorAll('#sp-rows tr .sp-front-dot')]"
        ".map(i => i.closest('tr').dataset.trial)"))
    assert dotted == sorted(front)
    expect(page.locator("#sp-legend-lower")).to_be_visible()
    expect(page.locator("#sp-legend-lower")).to_contain_text("hollow: lower rung")
    expect(page.locator("#sp-legend-solid")).to_contain_text("solid: trained to the top rung "
                                                              "(4,800 steps)")
    expect(page.locator("#sp-legend-pretrained")).to_contain_text("IMDN, pretrained")

    # Baselines: IMDN listed as a reference row; ESPCN, below bicubic, is matched by nothing;
    # FSRCNN's verdict is read at the top rung.
    baselines = page.locator("#sp-baselines")
    expect(baselines.locator("li[data-baseline='imdn']")).to_contain_text(
        "IMDN (pretrained, not trained here)")
    espcn = baselines.locator("li[data-baseline='espcn']")
    expect(espcn).to_contain_text("below bicubic")
    expect(espcn).not_to_contain_text("matched")
    expect(espcn.locator(".sp-good")).to_have_count(0)
    expect(baselines.locator("li[data-baseline='fsrcnn'] .sp-bl-verdict")).to_contain_text(
        "at 4,800 steps")

    # Progress counts evaluations over every rung.
    planned = made["evaluations_planned"]
    expect(page.locator("#sp-bar")).to_have_attribute("aria-valuemax", str(planned))
    expect(page.locator("#sp-evals")).to_contain_text(f" / {planned} evaluations over 3 rungs")
    expect(current).to_contain_text("promoting to rung 3/3")
    shot(page, shots, "08-rungs", full_page=True)

    # The detail of a lower-rung candidate: its PSNR at each rung, and why it is not compared.
    page.locator("#sp-rows tr[data-trial='1']").click()
    history = page.locator("#sp-detail .sp-rung-history li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("300 steps")
    expect(history.nth(1)).to_contain_text("1,200 steps")
    expect(page.locator("#sp-detail")).to_contain_text("read at 4,800 steps only")
    # ... and of the promoted one: the rung under way after the two it completed.
    page.locator("#sp-rows tr[data-trial='4']").click()
    expect(history).to_have_count(3)
    expect(history.nth(2)).to_contain_text("training…")
    page.locator("#sp-rows tr[data-trial='5']").click()
    expect(page.locator("#sp-detail .sp-below-note")).to_contain_text("not above bicubic")
    page.locator("#sp-rows tr[data-trial='1']").click()
    page.wait_for_timeout(8500)  # the "just arrived" rings fade: hollow points as they stay
    page.evaluate("window.scrollTo(0, document.querySelector('.sp-main')"
                  ".getBoundingClientRect().top + scrollY - 70)")
    shot(page, shots, "09-rungs-chart-detail")


def test_waiting_says_why_and_the_eta_never_understates(page: Any, studio: Studio) -> None:
    """Issue 11 item 3: before the first trial the page says what it waits for; a learned
    baseline training shows in 'Now training' and counts in the ETA (from its measured step
    rate); the ETA is evaluations left times the measured time per evaluation, and says
    'finishing…' rather than a too-small number; a cancel request stops the ETA."""
    search = studio.new_search("Waiting, said", n_trials=6)
    open_search(page, studio, search)
    current, eta = page.locator("#sp-current"), page.locator("#sp-eta")
    expect(current).to_contain_text("preparing: reading the clip's frames")
    expect(eta).to_contain_text("estimating time left…")

    # ESPCN trains before the first trial: said, and paced from two progress events 3 s apart.
    studio.driver("baseline_progress", search=search, name="espcn", step=100, steps=600)
    expect(current).to_contain_text("Training ESPCN: step 100 / 600")
    page.wait_for_timeout(3200)
    studio.driver("baseline_progress", search=search, name="espcn", step=200, steps=600)
    expect(current).to_contain_text("Training ESPCN: step 200 / 600")
    expect(current).not_to_contain_text("between trials")
    expect(eta).to_contain_text(re.compile(r"about \d+\s(min|s) left \(done ≈"))
    # 6 trials of 600 steps at ~32 ms a step: minutes, never seconds.
    assert "min" in eta.inner_text(), eta.inner_text()

    studio.driver("baselines", search=search)
    expect(current).to_contain_text("starting the first trial")
    studio.driver("trials", search=search, numbers=list(range(5)), n_trials=6, progress=False)
    expect_rows(page, 5)
    studio.driver("progress", search=search, number=5, step=300, steps=600, loss=0.02)
    expect(current).to_contain_text("current trial: step 300 / 600")
    expect(eta).to_contain_text(re.compile(r"about \d+\s(min|s) left"))
    # The last trial's steps are done, its scoring is not: no "about 1 s left".
    studio.driver("progress", search=search, number=5, step=600, steps=600, loss=0.02)
    expect(eta).to_contain_text("finishing…")
    assert not re.search(r"about \d\s?s left", eta.inner_text()), eta.inner_text()

    with page.expect_navigation():
        page.click("#sp-cancel button")
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "live")
    expect(eta).to_contain_text("cancelling: stops within seconds")
    expect(eta).not_to_contain_text(" left")
    studio.driver("finish", search=search, trained=5)
    expect(page.locator("#sp-status")).to_have_text("cancelled")


ACTIONS = ["#sp-detail form.sp-preview-form button[value=measured]",
           "#sp-detail form.sp-preview-form button[value=apply]",
           "#sp-detail form.sp-full-train-form button", "#sp-detail a.sp-download"]


def test_trial_actions_are_in_view_when_a_trial_is_selected(page: Any, studio: Studio,
                                                            shots: Path) -> None:
    """Issue 11 item 4: at 1360x1000 the selected trial's Preview, Full-train and Download sit
    at the top of its detail, in the viewport, and the detail is no scroll box (its longest
    form: a multi-fidelity trial with its rung history and genome)."""
    search = studio.driver("new_search", clip=studio.clip, name="Detail actions", n_trials=9,
                           rungs=True)["id"]
    studio.driver("baselines", search=search, pretrained=True)
    studio.driver("trials", search=search, numbers=list(range(9)), n_trials=9, progress=False,
                  rungs=True)
    open_search(page, studio, search)
    expect(page.locator("#sp-rows tr")).to_have_count(9)
    x, y = point_position(page, dataset=1, index=0)  # a top-rung trial on the front
    page.mouse.click(x, y)
    expect(page.locator("#sp-detail .sp-genome")).to_contain_text(" channels")
    for selector in ACTIONS:
        expect(page.locator(selector)).to_be_in_viewport(ratio=1)
    detail = page.locator("#sp-detail")
    assert detail.evaluate("d => d.scrollHeight <= d.clientHeight + 1"), "the detail scrolls"
    assert detail.evaluate("d => getComputedStyle(d).overflowY") == "visible"
    # The actions come right under the title, before the metrics.
    order = detail.evaluate("d => [...d.children].map(c => c.className)")
    assert order.index("sp-detail-actions") < order.index("sp-metrics"), order
    shot(page, shots, "10-detail-actions")


def test_the_selected_trial_is_in_the_address(page: Any, studio: Studio) -> None:
    """Issue 11 item 7: selecting a trial puts ?trial=N in the address (replaceState: no
    history entry), and a page opened with ?trial=N (or #trial-N) opens with it selected."""
    search = studio.new_search("Deep link", n_trials=10)
    studio.driver("baselines", search=search)
    studio.driver("trials", search=search, numbers=list(range(10)), n_trials=10, progress=False)
    page.goto(f"{studio.url}/searches/{search}/?trial=4")
    expect(page.locator("#sp-live")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#sp-rows tr[data-trial='4']")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#sp-detail .sp-detail-title")).to_contain_text("#4")
    expect(page.locator("#sp-detail .sp-genome")).to_contain_text(" channels")
    for selector in ACTIONS:  # opened from a link, its actions are in view at once
        expect(page.locator(selector)).to_be_in_viewport(ratio=1)

    history = page.evaluate("history.length")
    page.locator("#sp-rows tr[data-trial='7']").click()
    expect(page.locator("#sp-detail .sp-detail-title")).to_contain_text("#7")
    assert page.url.endswith(f"/searches/{search}/?trial=7"), page.url
    assert page.evaluate("history.length") == history
    page.reload()
    expect(page.locator("#sp-rows tr[data-trial='7']")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#sp-detail .sp-detail-title")).to_contain_text("#7")
    page.click("#sp-detail .sp-close")
    expect(page.locator("#sp-rows tr[aria-selected='true']")).to_have_count(0)
    assert page.url.endswith(f"/searches/{search}/"), page.url

    page.goto(f"{studio.url}/searches/{search}/#trial-2")
    expect(page.locator("#sp-rows tr[data-trial='2']")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_url(re.compile(r"\?trial=2$"))


def test_the_filter_understands_comparisons(page: Any, studio: Studio, shots: Path) -> None:
    """Issue 11 item 7: `psnr>31`, `macs<2G` (or `macs<2`, in the column's unit),
    `state:rejected`, plain words, all combined with spaces (AND); a word it cannot read is
    named in the hint under the filter, which otherwise shows the syntax."""
    search = studio.new_search("Numeric filter", n_trials=16)
    studio.driver("baselines", search=search)
    made = studio.driver("trials", search=search, numbers=list(range(16)), n_trials=16,
                         progress=False, reject=[3, 9])["trials"]
    open_search(page, studio, search)
    expect_rows(page, 16)
    hint = page.locator("#sp-filter-hint")
    expect(hint).to_contain_text("psnr>31")
    expect(hint).to_contain_text("macs<2G")

    def shown() -> list[int]:
        return sorted(int(n) for n in page.evaluate(
            "[...document.querySelectorAll('#sp-rows > tr')].map(tr => tr.dataset.trial)"))

    def expect_shown(numbers: list[int]) -> None:
        expect(page.locator("#sp-rows > tr")).to_have_count(len(numbers))
        assert shown() == sorted(numbers), (shown(), sorted(numbers))

    trained = [t for t in made if t["psnr"] is not None]
    above = [t["number"] for t in trained if t["psnr"] > 31]
    cheap = [t["number"] for t in made if t["macs"] < 2e9]
    assert 0 < len(above) < len(trained) and 0 < len(cheap) < len(made), made
    page.fill("#sp-filter", "psnr>31")
    expect_shown(above)
    page.fill("#sp-filter", "macs<2G")
    expect_shown(cheap)
    page.fill("#sp-filter", "macs < 2")  # spaces around the operator; the column's unit, G
    expect_shown(cheap)
    page.fill("#sp-filter", "psnr>31 macs<2G")
    expect_shown(sorted(set(above) & set(cheap)))
    expect(page.locator("#sp-count")).to_have_text(f"{len(set(above) & set(cheap))} of 16")
    page.fill("#sp-filter", "state:rejected")
    expect_shown([3, 9])
    word = "dwsep"
    with_word = [t["number"] for t in trained if word in t["arch"] and t["psnr"] > 31]
    page.fill("#sp-filter", f"psnr>31 {word}")
    expect_shown(with_word)
    page.fill("#sp-filter", "op:dwsep psnr>=31")
    expect_shown([t["number"] for t in trained if word in t["arch"] and t["psnr"] >= 31])
    expect(page.locator("#sp-filter")).to_have_attribute("aria-invalid", "false")
    shot(page, shots, "11-filter", clip=_trials_clip(page))

    page.fill("#sp-filter", "psnr>abc")
    expect(hint).to_contain_text("not understood: psnr>abc")
    expect(page.locator("#sp-filter")).to_have_attribute("aria-invalid", "true")
    page.fill("#sp-filter", "")
    expect_rows(page, 16)
    expect(hint).to_contain_text("psnr>31")


def _trials_clip(page: Any) -> dict[str, float]:
    page.locator(".sp-trials").scroll_into_view_if_needed()
    box = page.locator(".sp-trials").bounding_box()
    return {"x": box["x"] - 8, "y": box["y"] - 8, "width": box["width"] + 16,
            "height": min(box["height"], 520) + 16}


HISTORY = "Chart.getChart(document.getElementById('sp-history'))"


def history_series(page: Any) -> list[list[list[float]]]:
    return page.evaluate(f"{HISTORY}.data.datasets.map(d => d.data.map(p => [p.x, p.y]))")


def test_history_plot_and_loss_curves_follow_the_trials(page: Any, studio: Studio,
                                                       shots: Path) -> None:
    """Issue 11 (peers): the optimization history, best PSNR so far and the front's
    hypervolume against trial number, drawn from the rows and updated live; each trial's
    training loss, seen live, stays in its detail after it ends."""
    search = studio.new_search("History", n_trials=14)
    studio.driver("baselines", search=search)
    made = studio.driver("trials", search=search, numbers=list(range(6)), n_trials=14,
                         progress=False)["trials"]
    open_search(page, studio, search)
    expect_rows(page, 6)
    page.locator("#sp-history-panel").scroll_into_view_if_needed()
    page.wait_for_function(f"{HISTORY} !== undefined")
    values, _lower, best, hv = history_series(page)
    assert sorted(x for x, _ in values) == list(range(6))
    ys = [y for _, y in best]
    assert ys == sorted(ys) and abs(ys[-1] - max(t["psnr"] for t in made)) < 1e-9, best
    assert best[-1][0] == 5  # the line runs on to the last trial
    hvs = [y for _, y in hv]
    assert hvs == sorted(hvs) and hvs[-1] > 0, hv
    expect(page.locator("#sp-history-empty")).to_be_hidden()
    chart_id = page.evaluate(f"{HISTORY}.id")

    # More trials, with their progress: the history grows in place, live.
    studio.driver("trials", search=search, numbers=list(range(6, 12)), n_trials=14,
                  progress=True)
    expect_rows(page, 12)
    page.wait_for_function(f"{HISTORY}.data.datasets[0].data.length === 12")
    assert page.evaluate(f"{HISTORY}.id") == chart_id, "the history chart was re-created"
    values, _lower, best, hv = history_series(page)
    assert best[-1][0] == 11 and [y for _, y in hv] == sorted(y for _, y in hv)
    shot(page, shots, "12-history", clip=_panel_clip(page, "#sp-history-panel"))

    # Trial 8 trained with progress events while the page was open: its loss curve stays.
    page.locator("#sp-rows tr[data-trial='8']").click()
    curve = page.locator("#sp-detail svg.sp-curve polyline")
    expect(curve).to_have_count(1)
    assert len(curve.get_attribute("points").split()) == 2  # steps 150 and 300
    expect(page.locator("#sp-detail .sp-curve-note")).to_contain_text("over 300 steps")
    # Trial 2 trained before the page opened: no curve is made up for it.
    page.locator("#sp-rows tr[data-trial='2']").click()
    expect(page.locator("#sp-detail .sp-detail-title")).to_contain_text("#2")
    expect(page.locator("#sp-detail svg.sp-curve")).to_have_count(0)


def _panel_clip(page: Any, selector: str) -> dict[str, float]:
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    return {"x": box["x"] - 8, "y": box["y"] - 8, "width": box["width"] + 16,
            "height": box["height"] + 16}
