"""Evaluation: metrics, protocols (full ranking, rating, click, cold start) and reports.

Models are used only through :class:`lgrec.models.base.Recommender`, so every model is
evaluated by the same code; see :mod:`lgrec.eval.metrics` for the exact formulas.
"""

from lgrec.eval.metrics import accuracy, auc, coverage, mae, ranking_metrics, rmse
from lgrec.eval.protocol import (
    click_pairs,
    evaluate_click,
    evaluate_model,
    evaluate_ranking,
    evaluate_rating,
    sample_unseen,
)
from lgrec.eval.report import comparison_table, write_report

__all__ = [
    "accuracy",
    "auc",
    "click_pairs",
    "comparison_table",
    "coverage",
    "evaluate_click",
    "evaluate_model",
    "evaluate_ranking",
    "evaluate_rating",
    "mae",
    "ranking_metrics",
    "rmse",
    "sample_unseen",
    "write_report",
]
