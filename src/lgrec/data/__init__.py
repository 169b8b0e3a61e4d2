"""The ``data`` stage: load raw files into a :class:`Dataset`, clean it, split it.

Loaders (``load_movielens``, ``load_lightgcn``, ``load_colakg``, ``load_recbole``,
``load_tabular``, or ``load_dataset`` by name/path) map external ids to contiguous integers
once; ``clean`` removes bad rows with a report; the ``split_*`` functions and ``carve_valid``
build train/valid/test views that share one id space.
"""

from lgrec.data.clean import CleanReport, clean
from lgrec.data.colakg import load_colakg, load_colakg_ml1m
from lgrec.data.dataset import Dataset, Split
from lgrec.data.lightgcn_txt import load_lastfm, load_lightgcn
from lgrec.data.movielens import load_movielens
from lgrec.data.recbole import load_recbole
from lgrec.data.registry import DATASETS, load_dataset
from lgrec.data.split import (
    carve_valid,
    read_item_ids,
    split_cold_items,
    split_fixed,
    split_random,
    split_temporal,
)
from lgrec.data.tabular import load_tabular

__all__ = [
    "DATASETS",
    "CleanReport",
    "Dataset",
    "Split",
    "carve_valid",
    "clean",
    "load_colakg",
    "load_colakg_ml1m",
    "load_dataset",
    "load_lastfm",
    "load_lightgcn",
    "load_movielens",
    "load_recbole",
    "load_tabular",
    "read_item_ids",
    "split_cold_items",
    "split_fixed",
    "split_random",
    "split_temporal",
]
