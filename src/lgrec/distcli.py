"""``lgrec train --distributed``: data-parallel training under torchrun (docs/distributed.md).

On one machine ``lgrec train --distributed --nproc-per-node 2 …`` starts torchrun itself,
which runs the same command in 2 processes; on several machines the user starts torchrun on
each (``torchrun --nnodes … -m lgrec train --distributed …``) and lgrec sees it is already
inside torchrun. Every process loads the data and fits the same model; the training loops run
data-parallel (:mod:`lgrec.train.distributed`) and process 0 saves the model.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from lgrec.errors import ConfigError

log = logging.getLogger(__name__)


def add_distributed_args(p: argparse.ArgumentParser) -> None:
    """The ``train`` flags of distributed training."""
    g = p.add_argument_group("distributed training (torch.distributed, gloo, CPU)")
    g.add_argument(
        "--distributed",
        action="store_true",
        help="train data-parallel; starts torchrun itself unless already run by torchrun",
    )
    g.add_argument(
        "--nproc-per-node", type=int, default=2, help="processes on this machine (default 2)"
    )
    g.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="torchrun restarts after a failed process; restarts resume from the checkpoints",
    )
    g.add_argument("--checkpoint-dir", help="training checkpoints (default OUT/checkpoints)")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoints")
    g.add_argument(
        "--ddp-graph",
        choices=["partition", "replicate"],
        default="partition",
        help="split the propagation matrix by rows over the processes (default) or give "
        "every process the whole graph",
    )


def checkpoint_dir(args: argparse.Namespace) -> Path:
    return Path(args.checkpoint_dir or Path(args.out) / "checkpoints")


def launch_command(args: argparse.Namespace, argv: list[str]) -> list[str]:
    """The torchrun command that runs ``lgrec <argv>`` in ``--nproc-per-node`` processes."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={args.nproc_per_node}", f"--max-restarts={args.max_restarts}",
        "-m", "lgrec", *argv,
    ]  # fmt: skip


def launch(args: argparse.Namespace, argv: list[str]) -> int:
    """Check the flags, then run this command under torchrun; its exit status."""
    if args.nproc_per_node < 1:
        raise ConfigError(f"--nproc-per-node must be ≥ 1, got {args.nproc_per_node}")
    if args.max_restarts < 0:
        raise ConfigError(f"--max-restarts must be ≥ 0, got {args.max_restarts}")
    ck = checkpoint_dir(args)
    if ck.is_dir() and any(ck.iterdir()) and not args.resume:
        raise ConfigError(
            f"{ck} already holds training checkpoints: pass --resume to continue that run, "
            "or choose another --checkpoint-dir (nothing there is overwritten)"
        )
    cmd = launch_command(args, argv)
    log.info("starting %s", shlex.join(cmd))
    return subprocess.call(cmd)


def in_torchrun() -> bool:
    """Whether this process was started by torchrun (its environment names rank and world)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def rank() -> int:
    """This process's rank in torchrun (0 outside it)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def training(args: argparse.Namespace) -> Iterator[None]:
    """Run the block's fits data-parallel when ``--distributed`` (no-op otherwise)."""
    if not getattr(args, "distributed", False):
        yield
        return
    from lgrec.train.distributed import data_parallel

    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    before = _sharded_parts()
    with data_parallel(
        graph=args.ddp_graph, checkpoint_dir=checkpoint_dir(args), resume=args.resume or restarted
    ) as hooks:
        yield
    ridge, spectra = (n - m for n, m in zip(_sharded_parts(), before))
    parts = ["the closed-form core's statistics were summed over them "
             "(lgrec.train.distributed_ridge)"] if ridge else []  # fmt: skip
    if spectra:
        parts.append(f"the top-k singular vectors of the normalised interactions ({spectra} "
                     f"spectr{'um' if spectra == 1 else 'a'}) came from each one's users, one "
                     "all-reduce per Gram product (lgrec.train.distributed_spectrum)")  # fmt: skip
    if hooks.loops == 0 and hooks.rank == 0 and parts:
        log.info(
            "%s on %d processes: %s; the rest of the fit ran whole in each",
            args.model, hooks.world, "; ".join(parts),
        )  # fmt: skip
    elif hooks.loops == 0 and hooks.rank == 0:
        log.warning(
            "%s has no lgrec.train training loop: each of the %d processes fitted it whole "
            "(not data-parallel); --distributed helps LightGCN-style models",
            args.model, hooks.world,
        )  # fmt: skip


def _sharded_parts() -> tuple[int, int]:
    """(ridge fits summed over the process group, spectra computed from sharded users) so far."""
    from lgrec.train.distributed_ridge import reduced_fits
    from lgrec.train.distributed_spectrum import sharded_spectra

    return reduced_fits(), sharded_spectra()
