"""The search space of ``lgrec tune``: one :class:`Dim` per searched hyper-parameter.

A dimension is a range ``LOW:HIGH`` (``:log`` for log-uniform sampling, i.e. log θ uniform on
[log LOW, log HIGH]; integers when both ends are integers and the parameter's default is not
a float) or a list of choices ``A,B,C``. A model's space is its default space (below),
overridden by the ``[tune.MODEL]`` table of the configuration file, then by ``--space`` flags.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lgrec.errors import ConfigError
from lgrec.models.base import registered_models

#: default search space per model (overridden by ``[tune.MODEL]``, then by ``--space``)
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "bprmf": {"factors": [32, 64, 128], "lr": "1e-3:5e-2:log", "reg": "1e-5:1e-1:log"},
    "biasedmf": {"factors": [16, 32, 64, 128], "lr": "1e-3:1e-1:log", "reg": "1e-3:1:log"},
    "lightgcn": {
        "dim": [32, 64, 128],
        "n_layers": "1:4",
        "lr": "1e-3:2e-2:log",
        "reg": "1e-6:1e-2:log",
    },
    "lmgcn": {
        "spectral_k": [64, 128, 256, 512],
        "semantic_k": [0, 5, 10, 20],
        "profiles": [True, False],
    },
    "graphfilter": {
        "k": "8:512:log",
        "alpha": "0.0:1.5",
        "sharpen": "0.0:3.0",
        "user_exp": "0.0:0.6",
        "item_exp": "0.2:0.6",
    },
    "textknn": {"k": "5:200:log"},
}


@dataclass(frozen=True)
class Dim:
    """One searched hyper-parameter: a range [low, high] (maybe log-scaled) or choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter in an Optuna trial."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return self.low <= value <= self.high and (not self.integer or isinstance(value, int))

    def __str__(self) -> str:
        if self.choices is not None:
            return f"{self.name} in {{{', '.join(map(repr, self.choices))}}}"
        kind = "int" if self.integer else "float"
        return f"{self.name} in [{self.low}, {self.high}] ({kind}{', log' if self.log else ''})"


def _scalar(text: str) -> Any:
    """A TOML scalar (``64``, ``1e-3``, ``true``, ``"x"``), else the text itself."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse_dim(name: str, spec: Any, *, default: Any = None, where: str = "--space") -> Dim:
    """A :class:`Dim` from ``"LOW:HIGH[:log]"``, ``"A,B,C"``, a list, or ``{low, high, log}``.

    ``default`` (the constructor default) decides int versus float for integral bounds.
    """
    what = f"{where} {name}={spec!r}"
    if isinstance(spec, str) and ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].strip().lower() != "log"):
            raise ConfigError(f"{what}: expected LOW:HIGH or LOW:HIGH:log, e.g. 1e-4:1e-1:log")
        spec = {"low": _scalar(parts[0]), "high": _scalar(parts[1]), "log": len(parts) == 3}
    elif isinstance(spec, str) and "," in spec:
        spec = [_scalar(p) for p in spec.split(",") if p.strip()]
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError(f"{what}: the list of choices is empty")
        bad = [c for c in spec if not (c is None or isinstance(c, bool | int | float | str))]
        if bad:
            raise ConfigError(f"{what}: choices must be numbers, strings or booleans, got {bad}")
        return Dim(name, choices=tuple(dict.fromkeys(spec)))
    if not isinstance(spec, Mapping) or set(spec) - {"low", "high", "log"} or "low" not in spec:
        raise ConfigError(
            f"{what}: expected LOW:HIGH[:log] or A,B,C (a fixed value goes in --param)"
        )
    low, high, is_log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
    if not (_is_number(low) and _is_number(high)):
        raise ConfigError(f"{what}: range bounds must be numbers, got {low!r} and {high!r}")
    if not low < high:
        raise ConfigError(f"{what}: low ({low}) must be below high ({high})")
    if is_log and low <= 0:
        raise ConfigError(f"{what}: a log range needs low > 0, got {low}")
    first = default[0] if isinstance(default, list | tuple) and default else default
    as_int = isinstance(low, int) and isinstance(high, int) and not isinstance(first, float)
    if as_int:
        return Dim(name, int(low), int(high), is_log)
    return Dim(name, float(low), float(high), is_log)


def model_params(model: str) -> dict[str, Any]:
    """Constructor parameters of a registered model → their defaults."""
    models = registered_models()
    if model not in models:
        raise ConfigError(f"unknown model {model!r}; available: {sorted(models)}")
    sig = inspect.signature(models[model].__init__).parameters
    return {n: p.default for n, p in sig.items() if n != "self"}


def config_table(tune: Any, model: str) -> Mapping[str, Any] | None:
    """The ``[tune.MODEL]`` table of a configuration's ``tune`` setting (``None`` if absent)."""
    if not isinstance(tune, Mapping):
        raise ConfigError(f"tune must be a table of [tune.MODEL] tables, got {tune!r}")
    return tune.get(model)


def resolve_space(
    model: str,
    *,
    table: Mapping[str, Any] | None = None,
    flags: Iterable[str] = (),
    defaults: bool = True,
) -> list[Dim]:
    """The search space of ``model``: defaults < TOML ``[tune.MODEL]`` ``table`` < ``flags``.

    ``flags`` are ``NAME=LOW:HIGH[:log]`` or ``NAME=A,B,C`` strings. Raises
    :class:`ConfigError` for an unknown model or parameter, a bad range, or an empty space.
    """
    accepted = model_params(model)
    specs: dict[str, tuple[Any, str]] = {}
    if defaults:
        specs |= {n: (s, "default space") for n, s in DEFAULT_SPACES.get(model, {}).items()}
    if table is not None and not isinstance(table, Mapping):
        raise ConfigError(f"[tune.{model}] must be a table of NAME = SPEC, got {table!r}")
    specs |= {n: (s, f"[tune.{model}]") for n, s in (table or {}).items()}
    for text in flags:
        name, sep, spec = text.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--space {text!r}: expected NAME=LOW:HIGH[:log] or NAME=A,B,C")
        specs[name.strip()] = (spec.strip(), "--space")
    dims = []
    for name, (spec, where) in specs.items():
        if name not in accepted:
            raise ConfigError(
                f"{where}: model {model!r} has no parameter {name!r}; it takes {sorted(accepted)}"
            )
        dims.append(parse_dim(name, spec, default=accepted[name], where=where))
    if not dims:
        raise ConfigError(
            f"nothing to tune for model {model!r}: give --space NAME=LOW:HIGH or NAME=A,B,C "
            f"(parameters: {sorted(accepted)})"
        )
    return dims


__all__ = ["DEFAULT_SPACES", "Dim", "config_table", "model_params", "parse_dim", "resolve_space"]
