"""MkDocs hook: links from a page into the repository (`../examples/...`) must name a file or
folder that exists, since MkDocs only checks links between pages."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

_LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    repo = docs.parent
    here = (docs / page.file.src_path).parent
    for match in _LINK.finditer(markdown):
        target = match.group(1)
        if "://" in target or target.startswith("mailto:"):
            continue
        path = (here / target).resolve()
        if path.is_relative_to(docs):
            continue  # a page: MkDocs checks it
        if not path.is_relative_to(repo) or not path.exists():
            raise PluginError(f"{page.file.src_path}: link to {target!r}: no such file in the "
                              "repository")
    return markdown
