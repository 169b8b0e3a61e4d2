"""Models behind one interface (:class:`lgrec.models.base.Recommender`).

Importing this package registers every built-in model so :meth:`Recommender.load` can find it.
"""

from lgrec.models.base import Recommender, register, registered_models

__all__ = ["Recommender", "register", "registered_models"]
