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
