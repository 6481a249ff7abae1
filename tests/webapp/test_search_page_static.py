"""The search page without a browser: it renders, hands its data to the script as JSON (never
inline JS), loads only files the studio serves itself, and the vendored chart library carries
its licence and version."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.conftest import REPO
from webapp.studio.models import Clip, Search

VENDOR = REPO / "static" / "vendor"
VENDORED = {
    "chartjs-4.6.1": "chart.umd.min.js",
    "chartjs-plugin-zoom-2.2.0": "chartjs-plugin-zoom.min.js",
    "hammerjs-2.0.8": "hammer.min.js",
}


def test_vendored_libraries_carry_licence_and_version() -> None:
    for folder, script in VENDORED.items():
        path = VENDOR / folder
        version = folder.rsplit("-", 1)[1]
        assert (path / script).stat().st_size > 1000
        assert "MIT" in (path / "LICENSE.md").read_text() or "Permission is hereby granted" in \
            (path / "LICENSE.md").read_text()
        assert (path / "VERSION").read_text().strip() == version
        assert version in (path / "README.md").read_text()


STUDIO = REPO / "static" / "studio"
MODULES = sorted(STUDIO.glob("search_*.js"))  # search.js's modules, search_socket.js and co.


def test_scripts_reference_no_remote_host() -> None:
    for path in [STUDIO / "search.js", STUDIO / "search.css", *MODULES]:
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path


def test_search_page_renders_with_json_data_and_local_assets(
        client_in: Client, user: User, make_clip: Callable[..., Clip],
        make_search: Callable[..., Search]) -> None:
    search = make_search(make_clip(user))
    response = client_in.get(reverse("studio:search_detail", args=[search.pk]))
    assert response.status_code == 200
    html = response.content.decode()

    data = re.search(r'<script id="sp-search" type="application/json">(.*?)</script>', html,
                     re.S)
    assert data is not None
    assert json.loads(data.group(1))["id"] == search.pk
    assert f'"{reverse("studio:search_data", args=[search.pk])}"' in html
    # Scripts only from /static/, no inline code; stylesheets likewise.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        if 'type="application/json"' in attrs:
            continue
        assert re.search(r'src="/static/', attrs) and not body.strip(), attrs
    for href in re.findall(r'<link[^>]+href="([^"]+)"', html):
        assert href.startswith(("/static/", "data:")), href
    assert "search.js" in html and "chart.umd.min.js" in html
    # Control forms post to the API with a CSRF token.
    assert reverse("studio:search_cancel", args=[search.pk]) in html
    assert reverse("studio:search_resume", args=[search.pk]) in html
    assert html.count("csrfmiddlewaretoken") >= 2


def test_static_files_referenced_by_the_page_exist() -> None:
    template = (REPO / "webapp/studio/templates/studio/search_detail.html").read_text()
    for name in re.findall(r"{% static '([^']+)' %}", template):
        assert (REPO / "static" / name).is_file(), name


def test_template_has_no_inline_script() -> None:
    template = (REPO / "webapp/studio/templates/studio/search_detail.html").read_text()
    assert "<script>" not in template and "onclick" not in template.lower()


def test_search_page_embeds_a_slim_snapshot_and_opens_its_socket_early(
        client_in: Client, user: User, make_clip: Callable[..., Clip],
        make_search: Callable[..., Search]) -> None:
    """The page draws from a snapshot in its HTML (rows without genomes), and a small script
    before the chart library opens the socket after that snapshot's seq; every script is
    deferred from the head."""
    from webapp.studio.progress import record_event

    search = make_search(make_clip(user))
    record_event(search.pk, "trial_started", {"number": 0, "genome": {"key": "k"},
                                              "macs": 10, "at": 1.0})
    html = client_in.get(reverse("studio:search_detail", args=[search.pk])).content.decode()
    data = re.search(r'<script id="sp-snapshot" type="application/json">(.*?)</script>', html,
                     re.S)
    assert data is not None
    snapshot = json.loads(data.group(1))
    assert snapshot["search"]["id"] == search.pk and snapshot["search"]["seq"] == 1
    assert [(t["number"], t["state"]) for t in snapshot["trials"]] == [(0, "running")]
    assert "genome" not in snapshot["trials"][0]
    scripts = re.findall(r'<script (?:type="module" )?src="([^"]+)"', html)
    assert scripts.index("/static/studio/search_socket.js") < min(
        i for i, s in enumerate(scripts) if "chart.umd" in s or s.endswith("/search.js"))
    # All deferred from the head: fetched while the big snapshot still arrives, run in order;
    # search.js last, an ES module (deferred by nature), after the libraries it uses.
    head = html[:html.index("</head>")]
    assert len(scripts) == 5 and scripts[-1] == "/static/studio/search.js", scripts
    assert all(f'<script src="{s}" defer></script>' in head for s in scripts[:-1]), scripts
    assert '<script type="module" src="/static/studio/search.js"></script>' in head
    # Every module in search.js's import graph is preloaded, so none waits for its importer.
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/studio/([^"]+)">', head))
    assert preloaded == module_graph("search.js") - {"search.js"}, preloaded


def module_graph(entry: str) -> set[str]:
    """The files `entry` imports, transitively (relative imports in static/studio/)."""
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        text = (STUDIO / name).read_text()
        todo += re.findall(r'^import [^;]*? from "\./([\w.]+)";', text, re.M | re.S)
    return seen


def test_search_page_modules_import_what_exists_and_each_other_only() -> None:
    """The page's ES modules: every import names a module that exists and exports the name;
    no module is left out of search.js's graph."""
    graph = module_graph("search.js")
    assert graph == {"search.js"} | {p.name for p in MODULES} - {"search_socket.js",
                                                                  "search_new.js"}, graph
    for name in graph:
        text = (STUDIO / name).read_text()
        for names, module in re.findall(r'^import \{([^}]*)\} from "\./([\w.]+)";', text,
                                        re.M | re.S):
            exported = (STUDIO / module).read_text()
            for imported in (n.strip() for n in names.split(",") if n.strip()):
                assert re.search(r"^export (?:async )?(?:function|const|let) " +
                                 re.escape(imported) + r"(?![\w$])", exported, re.M), (
                    f"{name} imports {imported} from {module}, which does not export it")
