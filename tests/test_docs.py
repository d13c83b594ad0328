"""The documentation site: it builds with --strict, its example answers are the served engine's, the app
serves it at /docs under the site-wide policy with no CDN, and the README stays short."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from api.web.errors import HTTP_CODES, MEDIA_STATUS
from api.web.routes.docs import INLINE_SCRIPT
from api.wiring.config import REPO_ROOT
from docs.examples import generate
from tests.conftest import DATA_DIR
from tests.servers import gunicorn

USER_FACING = [
    REPO_ROOT / "README.md",
    *sorted((REPO_ROOT / "docs").rglob("*.md")),
    *sorted((REPO_ROOT / "api" / "web" / "templates").rglob("*.html")),
]


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("docs-site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return site


def test_the_site_builds_strictly_and_renders_every_operation_of_openapi_yaml(built_site):
    contract = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
    operations = {
        f"{method.upper()} {path}"
        for path, item in contract["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    reference = (built_site / "reference" / "api" / "index.html").read_text()
    headings = {
        re.sub(r"<[^>]+>", "", heading).strip()
        for heading in re.findall(r'<h3 id="[^"]*">(.*?)<a class="headerlink"', reference)
    }
    assert operations <= headings, operations - headings
    assert "micro_expressions" in reference and "idempotency_key_reused" in reference


def test_no_page_loads_anything_from_another_host(built_site):
    remote = re.compile(
        r"""<(?:script|img|iframe)[^>]+src=["']?(?:https?:)?//|<link[^>]+href=["']?(?:https?:)?//"""
        r"""|@import\s+url\(["']?(?:https?:)?//"""
    )
    pages = [*built_site.rglob("*.html"), *built_site.rglob("*.css")]
    assert len(pages) > 20
    offending = [str(page.relative_to(built_site)) for page in pages if remote.search(page.read_text(errors="ignore"))]
    assert not offending


@pytest.mark.data
def test_the_example_answers_are_what_the_served_engine_answers_now(client, auth):
    """Fails when a model or a default changed: run `python -m docs.examples.generate` and commit the files."""

    def post(path: str, form: dict, headers: dict) -> tuple[int, dict]:
        form = {k: (io.BytesIO(v), "upload") if isinstance(v, bytes) else v for k, v in form.items()}
        response = client.post(path, data=form, headers={**headers, **auth})
        return response.status_code, response.get_json()

    for name, answer in generate.answers(post, DATA_DIR).items():
        shown = json.loads(generate.example_path(name).read_text())
        differences = generate.same_answer(shown, answer)
        assert not differences, (
            f"docs/examples/{name}.json is stale ({len(differences)} differences, first "
            f"{differences[:5]}); regenerate: python -m docs.examples.generate"
        )


def test_the_pages_include_the_generated_answers(built_site):
    quickstart = (built_site / "quickstart" / "index.html").read_text()
    for name in ("image", "clip"):
        assert generate.request_id(name) in quickstart
    assert generate.request_id("invalid-options") in (built_site / "concepts" / "errors" / "index.html").read_text()


def inline_script_hashes(html: str) -> set[str]:
    return {
        "'sha256-%s'" % base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in INLINE_SCRIPT.findall(html)
    }


def test_docs_are_served_under_the_site_policy_with_their_inline_scripts_allowed_by_hash(app_factory, built_site):
    client = app_factory(docs_site_dir=built_site).test_client()
    assert client.get("/docs").headers["Location"].endswith("/docs/")
    page = client.get("/docs/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "img-src 'self' data:" in policy
    script_src = next(part for part in policy.split("; ") if part.startswith("script-src"))
    hashes = inline_script_hashes(page.get_data(as_text=True))
    assert hashes and set(script_src.split()[2:]) == hashes

    assert client.get("/docs/reference/api").headers["Location"].endswith("/docs/reference/api/")
    reference = client.get("/docs/reference/api/")
    assert reference.status_code == 200 and "/v1/analyze" in reference.get_data(as_text=True)
    script = re.search(r'src="(\.\./)*(assets/javascripts/bundle\.[0-9a-f]+\.min\.js)"', page.get_data(as_text=True))
    assert client.get(f"/docs/{script.group(2)}").status_code == 200
    assert client.get("/docs/examples/image.json").get_json()["faces"]
    for outside in ("/docs/../pyproject.toml", "/docs/%2e%2e/pyproject.toml", "/docs/no-such-page/"):
        assert client.get(outside).status_code == 404


def test_without_a_built_site_docs_says_how_to_build_it(app_factory, tmp_path):
    client = app_factory(docs_site_dir=tmp_path / "not-built").test_client()
    for path in ("/docs/", "/docs/reference/api/"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.mimetype == "text/html"
        assert "make docs" in answer.get_data(as_text=True)


def test_the_pages_link_the_rendered_reference_and_the_contract_stays_downloadable(client):
    demo = client.get("/demo").get_data(as_text=True)
    assert 'href="/docs/reference/api/"' in demo and 'href="/docs/"' in demo
    contract = client.get("/openapi.yaml")
    assert contract.status_code == 200 and contract.get_data(as_text=True).startswith("openapi: 3.1")


def test_the_readme_is_short_and_starts_with_the_two_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    head = "\n".join(readme.splitlines()[:25])
    assert "make run" in head and "make test" in head and "Ctrl-C" in head


def test_every_problem_code_the_api_raises_is_in_the_contract_and_on_the_errors_page():
    contract = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
    listed = set(contract["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    raised = {
        code
        for path in (REPO_ROOT / "api").rglob("*.py")
        for code in re.findall(r'ApiError\(\s*\d{3},\s*"([a-z_]+)"', path.read_text())
    }
    raised |= {error.code for error in MEDIA_STATUS} | {code for code, _title in HTTP_CODES.values()}
    assert raised <= listed, sorted(raised - listed)
    page = (REPO_ROOT / "docs" / "concepts" / "errors.md").read_text()
    assert [code for code in sorted(listed) if f"`{code}`" not in page] == []


@pytest.mark.parametrize("path", USER_FACING, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_nothing_user_facing_points_at_internal_issues(path):
    assert not re.search(r"\bissues? \d+", path.read_text(), re.IGNORECASE)


@pytest.mark.browser
def test_the_site_runs_in_a_browser_under_the_policy_and_search_finds_pages(built_site, tmp_path):
    """Chromium reports every CSP violation as a console error; Material's search runs in a web worker."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = Path(os.environ.get("EMOSCOPE_CHROMIUM", "/usr/bin/chromium"))
    artifacts = Path(os.environ.get("EMOSCOPE_TEST_ARTIFACTS", REPO_ROOT / "var" / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with (
        gunicorn(tmp_path / "state", EMOSCOPE_DOCS_SITE_DIR=str(built_site)) as base,
        playwright_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page(base_url=base)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto("/demo")
        page.click("text=API reference")
        playwright_api.expect(page.locator("h1").first).to_have_text(re.compile("API reference"))
        playwright_api.expect(page.locator("text=POST").first).to_be_visible()
        page.screenshot(path=str(artifacts / "docs-reference.png"))
        page.goto("/docs/quickstart/")
        page.keyboard.press("/")  # Material's shortcut into the search box
        page.keyboard.type("idempotency")
        playwright_api.expect(page.locator(".md-search-result__item").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(artifacts / "docs-search.png"))
        browser.close()
    assert not problems, problems
