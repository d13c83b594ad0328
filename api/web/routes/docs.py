"""The documentation site at /docs: the static files `mkdocs build` wrote (`make docs`), served as they are.

Material's pages carry a few small inline scripts (its settings store, palette and tab state). Each
page's policy allows exactly those, by their SHA-256, so the site runs under the same no-inline,
no-CDN policy as every other page instead of with 'unsafe-inline'. Its stylesheet draws its icons
as data: SVG images, which images may be here (an image cannot run script).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, redirect, render_template, send_from_directory, url_for
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

from api.web.context import services
from api.web.websecurity import CONTENT_SECURITY_POLICY

bp = Blueprint("docs", __name__)

# Scripts with a src, or of a data type such as Material's JSON settings, never run inline.
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@bp.get("/docs/", defaults={"path": ""})
@bp.get("/docs/<path:path>")
def page(path: str):
    site: Path = services().settings.docs_site_dir
    if not (site / "index.html").is_file():
        return render_template("docs_missing.html"), 404
    found = safe_join(str(site), path)
    if found is None:
        raise NotFound()
    if Path(found).is_dir():
        if path and not path.endswith("/"):  # pages are folders; their relative links need the slash
            return redirect(url_for("docs.page", path=f"{path}/"))
        path = f"{path}index.html"
        found = str(Path(found) / "index.html")
    response = send_from_directory(site, path)
    if path.endswith(".html"):
        file = Path(found)
        response.headers["Content-Security-Policy"] = page_policy(str(file), file.stat().st_mtime_ns)
    return response


@lru_cache(maxsize=256)
def page_policy(file: str, _mtime_ns: int) -> str:
    """The site-wide policy plus this page's own inline scripts (cached until the file changes)."""
    text = Path(file).read_text(encoding="utf-8")
    hashes = sorted(
        {base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in INLINE_SCRIPT.findall(text)}
    )
    allowed = "".join(f" 'sha256-{digest}'" for digest in hashes)
    directives = [d for d in CONTENT_SECURITY_POLICY.split("; ") if not d.startswith(("img-src", "script-src"))]
    return "; ".join([*directives, "img-src 'self' data:", f"script-src 'self'{allowed}"])
