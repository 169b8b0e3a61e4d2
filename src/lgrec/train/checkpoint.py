"""Training checkpoints: one safetensors file per training loop, never pickle.

A checkpoint holds everything :class:`lgrec.train.trainer.LoopState` needs to continue exactly
where the loop stopped:

* tensors: the module's weights (``model.*``), the best weights so far (``best.*``), the
  optimiser's per-parameter state (``opt.<param>.<key>``, e.g. Adam's moments and step) and each
  process's torch RNG state (``rng.<rank>.torch``);
* JSON in the safetensors header (key ``lgrec``): epoch, early-stopping counters, the training
  log, the optimiser's hyper-parameters, each process's NumPy and Python RNG state, the loop's
  settings and the world size it was written with.

The file is written atomically (temp file + rename), so a crash while writing leaves the
previous checkpoint intact. Loading checks that the loop's settings, the world size and the
parameter shapes are those of the checkpoint, and says which one differs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from lgrec.errors import ConfigError, ModelFileError
from lgrec.train.trainer import LoopState, TrainLog
from lgrec.utils import atomic_write_bytes

FORMAT = 1


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """This process's RNG states: the loop's NumPy generator, torch's and Python's."""
    return {
        "numpy": rng.bit_generator.state,
        "python": list(random.getstate()),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` in place (``rng`` is shared with e.g. a negative sampler)."""
    rng.bit_generator.state = state["numpy"]
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])


def _fingerprint(st: LoopState, world_size: int) -> dict[str, Any]:
    shapes = {k: list(v.shape) for k, v in st.module.state_dict().items()}
    return {"desc": st.desc, "world_size": world_size, **st.settings, "shapes": shapes}


def save_checkpoint(
    path: str | Path, st: LoopState, rng_states: list[dict[str, Any]], world_size: int
) -> None:
    """Write ``st`` and every process's ``rng_states`` (index = rank) to ``path`` atomically."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in st.module.state_dict().items()}
    if st.best_state is not None:
        tensors.update({f"best.{k}": v.contiguous() for k, v in st.best_state.items()})
    opt = st.optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in opt["state"].items():
        for key, v in pstate.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{pid}.{key}"] = v.detach().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = v
    rngs = []
    for r, s in enumerate(rng_states):
        tensors[f"rng.{r}.torch"] = s["torch"]
        rngs.append({"numpy": s["numpy"], "python": s["python"]})
    tl = st.log
    meta = {
        "format": FORMAT,
        "fingerprint": _fingerprint(st, world_size),
        "epoch": st.epoch,
        "bad": st.bad,
        "stopped": st.stopped,
        "has_best": st.best_state is not None,
        "log": {
            "epochs_run": tl.epochs_run,
            "best_epoch": tl.best_epoch,
            "best_valid": tl.best_valid,
            "losses": tl.losses,
            "valid": tl.valid,
            "seconds": tl.seconds,
        },
        "opt_groups": opt["param_groups"],
        "opt_scalars": scalars,
        "rng": rngs,
    }
    atomic_write_bytes(path, save(tensors, metadata={"lgrec": json.dumps(meta)}))


def read_checkpoint(
    source: str | Path | bytes, name: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint file or its bytes; a clear error if it is not one."""
    if not isinstance(source, bytes):
        name = str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        tensors = load(raw)
        n = int.from_bytes(raw[:8], "little")  # safetensors: u64 header size, JSON header
        meta = json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["lgrec"])
    except (OSError, SafetensorError, ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{name} is not a readable lgrec training checkpoint: {e}") from e
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{name}: checkpoint format {meta.get('format')!r}, want {FORMAT}")
    return tensors, meta


def load_checkpoint(
    source: str | Path | bytes, st: LoopState, rank: int, world_size: int, name: str = ""
) -> None:
    """Restore ``st`` (weights, optimiser, counters, log) and this rank's RNG states in place
    from a checkpoint file or its bytes (``name`` = its path, for messages). Raises
    :class:`ConfigError` naming the setting that differs when the checkpoint was written by a
    loop with other settings."""
    tensors, meta = read_checkpoint(source, name or "checkpoint")
    path = name or source
    want, have = _fingerprint(st, world_size), meta["fingerprint"]
    diff = [k for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)]
    if diff:
        shown = "; ".join(f"{k}: checkpoint {have.get(k)!r}, now {want.get(k)!r}" for k in diff)
        raise ConfigError(
            f"{path} was written by a different training run ({shown}); resume with the same "
            "settings and number of processes, or use a new checkpoint directory"
        )
    st.module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    st.best_state = best if meta["has_best"] else None
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, key = k.split(".", 2)
            opt_state.setdefault(int(pid), {})[key] = v
    for pid, kv in meta["opt_scalars"].items():
        opt_state.setdefault(int(pid), {}).update(kv)
    st.optimizer.load_state_dict({"state": opt_state, "param_groups": meta["opt_groups"]})
    st.epoch, st.bad, st.stopped = meta["epoch"], meta["bad"], meta["stopped"]
    lg = meta["log"]
    st.log = TrainLog(
        epochs_run=lg["epochs_run"],
        best_epoch=lg["best_epoch"],
        best_valid=lg["best_valid"],
        losses=list(lg["losses"]),
        valid=[tuple(v) for v in lg["valid"]],
        seconds=lg["seconds"],
    )
    set_rng_state(st.rng, {**meta["rng"][rank], "torch": tensors[f"rng.{rank}.torch"]})
