"""The ``text`` stage: sentence embeddings (cached on disk) and user profiles.

``TextEncoder`` turns item and user texts into unit-norm vectors with a local
sentence-transformers model; ``history_profiles``/``user_text_profiles`` turn a user's history
into a vector in the same space, and ``profile_texts`` into a readable summary.
"""

from lgrec.text.cache import EmbeddingCache, get_cache
from lgrec.text.encoder import DEFAULT_MODEL, TextEncoder, packaged_model_path
from lgrec.text.profiles import (
    fold_in_profile,
    history_profiles,
    interaction_weights,
    profile_texts,
    user_text_profiles,
)

__all__ = [
    "DEFAULT_MODEL",
    "EmbeddingCache",
    "TextEncoder",
    "fold_in_profile",
    "get_cache",
    "history_profiles",
    "interaction_weights",
    "packaged_model_path",
    "profile_texts",
    "user_text_profiles",
]
