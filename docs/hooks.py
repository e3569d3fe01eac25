"""mkdocs hook: the site's front page is README.md (one text, shown on GitHub and on the site),
its links into docs/ made relative to the site and its links to other repository files shown as
paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def on_page_read_source(page: Any, config: Any) -> str | None:
    if page.file.src_uri != "index.md":
        return None
    text = README.read_text(encoding="utf-8")
    text = text.replace("](docs/", "](")
    # links to files outside docs/ (schemas/README.md, ...) are not pages of the site
    return re.sub(r"\[([^\]]+)\]\((?!https?://)([^)]+/[^)]*|[^)]*\.(?!md\b)\w+)\)", r"\1 (`\2`)", text)
