"""Models behind one interface (:class:`lgrec.models.base.Recommender`).

Importing this package registers every built-in model so :meth:`Recommender.load` can find it.
"""

from lgrec.models.base import Recommender, register, registered_models
from lgrec.models.graphfilter import GraphFilter
from lgrec.models.lightgcn import LightGCN
from lgrec.models.lmgcn import LMGCN
from lgrec.models.mf import BPRMF, BiasedMF
from lgrec.models.popularity import Popularity
from lgrec.models.textknn import TextKNN

__all__ = [
    "BPRMF",
    "LMGCN",
    "BiasedMF",
    "GraphFilter",
    "LightGCN",
    "Popularity",
    "Recommender",
    "TextKNN",
    "register",
    "registered_models",
]

# the user-level DP-SGD variants (dp-bprmf, dp-lightgcn) register themselves on import; a plain
# import (not `from`) also works when lgrec.privacy.dp_models is the module imported first
import lgrec.privacy.dp_models  # noqa: F401
