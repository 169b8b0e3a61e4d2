"""Typed run configuration: a TOML file plus command-line overrides.

Example ``lgrec.toml``::

    seed = 0
    dataset = "ml-100k"
    split = "fixed"            # fixed | random | temporal | cold
    cold_items = "cold.txt"    # split "cold": these items (one external id per line) are cold
    kg = "ml-100k-kg"          # knowledge graph (RecBole .kg + .link): LMGCN's item graph
    valid_ratio = 0.1
    models = ["popularity", "textknn", "bprmf", "lightgcn", "lmgcn"]

    [loader]                   # extra arguments of the data set's loader
    text_key = "mapped"        # e.g. which ids key a CoLaKG folder's llm_response_item.json

    [params.lmgcn]             # constructor arguments of each model
    dim = 64
    semantic_weight = 0.5

    [tune.lmgcn]               # search space of ``lgrec tune`` (see lgrec.tune)
    lr = "1e-4:1e-1:log"
    dim = [32, 64, 128]

Precedence: built-in defaults < TOML file < flags.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lgrec.errors import ConfigError

SPLITS = ("fixed", "random", "temporal", "cold")


@dataclass
class RunConfig:
    """Everything a CLI run needs to wire the stages together."""

    dataset: str = "ml-100k"
    data_dir: str | None = None
    fold: str = "u1"
    split: str = "fixed"
    test_ratio: float = 0.2
    cold_item_frac: float = 0.2
    cold_items: str | None = None
    kg: str | None = None
    valid_ratio: float = 0.1
    k_core: int | None = None
    loader: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    models: list[str] = field(
        default_factory=lambda: ["popularity", "textknn", "bprmf", "biasedmf", "lightgcn", "lmgcn"]
    )
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tune: dict[str, dict[str, Any]] = field(default_factory=dict)
    text_model: str | None = None
    text_max_length: int | None = 128
    ks: list[int] = field(default_factory=lambda: [10, 20])
    refit: bool = True
    out: str = "runs"
    threads: int | None = None
    cache_dir: str | None = None
    prepared: str | None = None  # a folder written by `lgrec prepare --out` (pandas or Spark)
    pseudonymize: bool = False  # user ids → HMAC-SHA256 pseudonyms (lgrec.privacy.pseudonym)
    pseudonym_key_file: str | None = None  # else the key comes from $LGREC_PSEUDONYM_KEY
    tombstones: str | None = None  # feedback store whose erased users data loading drops

    def validate(self) -> RunConfig:
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {self.split!r}")
        for name in ("valid_ratio", "test_ratio", "cold_item_frac"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not 0 <= v < 1:
                raise ConfigError(f"{name} must be a number in [0, 1), got {v!r}")
        if not self.ks or any(not isinstance(k, int) or k <= 0 for k in self.ks):
            raise ConfigError(f"ks must be positive integers, got {self.ks!r}")
        if self.cold_items is not None and self.split != "cold":
            raise ConfigError(f"cold_items={self.cold_items!r} needs split = 'cold'")
        if not isinstance(self.loader, dict):
            raise ConfigError(f"loader must be a table of loader arguments, got {self.loader!r}")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"threads must be positive, got {self.threads!r}")
        tl = self.text_max_length
        if tl is not None and (not isinstance(tl, int) or isinstance(tl, bool) or tl < 1):
            raise ConfigError(f"text_max_length must be a positive integer, got {tl!r}")
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the TOML file at ``path`` (if any), then non-None ``overrides``."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: invalid TOML ({e})") from e
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig(**values).validate()


def parse_param(text: str) -> tuple[str, str, Any]:
    """``"lmgcn.spectral_k=128"`` → ("lmgcn", "spectral_k", 128); values are TOML scalars/arrays."""
    try:
        key, raw = text.split("=", 1)
        model, name = key.strip().split(".", 1)
    except ValueError:
        raise ConfigError(
            f"--param {text!r}: expected MODEL.NAME=VALUE, e.g. lmgcn.spectral_k=128"
        ) from None
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return model.strip(), name.strip(), value
