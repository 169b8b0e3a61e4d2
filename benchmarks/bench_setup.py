"""The shared start of the benchmark scripts: logging, configuration, seeding, prepared data.

Imported as a sibling module (``python benchmarks/<script>.py`` puts this folder on the path).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any


def prepared_run(args: argparse.Namespace, **cfg: Any) -> tuple[Any, Any]:
    """Configure logging, load the run configuration (``args.seed``, ``args.threads``,
    ``args.data_dir`` plus ``cfg``), seed and set threads (:func:`lgrec.pipeline.setup`) and
    prepare the split; returns ``(cfg, prepared)``."""
    from lgrec.config import load_config
    from lgrec.pipeline import prepare, setup

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    conf = load_config(seed=args.seed, threads=args.threads, data_dir=args.data_dir, **cfg)
    setup(conf)
    return conf, prepare(conf)


def replace_docs_block(path: Any, key: str, block: str, heading: str, title: str) -> None:
    """Replace the text between ``<!-- key -->`` and ``<!-- /key -->`` in the markdown file
    ``path`` by ``block`` (appended under ``### heading`` when the markers are missing; a new
    file starts with ``# title``)."""
    from pathlib import Path

    from lgrec.utils import atomic_write_text

    path = Path(path)
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    text = path.read_text(encoding="utf-8") if path.is_file() else f"# {title}\n"
    new = f"{start}\n{block}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + new + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n### {heading}\n\n{new}\n"
    atomic_write_text(path, text)
