"""lgrec: language models + graph neural networks for recommendation.

Data flows one way: ``data`` → ``text`` → ``graph`` → ``models`` → ``train`` → ``eval``;
``serve`` and ``store`` wire trained models to users. See ``docs/architecture.md``.
"""

from lgrec.errors import LgrecError

__all__ = ["LgrecError", "__version__"]
__version__ = "0.1.0"
