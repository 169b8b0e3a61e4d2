"""Data-parallel training with ``torch.distributed`` (DDP, gloo on CPU) around the same loop.

Launched by ``torchrun --nproc-per-node=P`` (or ``lgrec train --distributed``, which launches
it), every process runs the same code: it loads the data, builds the same model and calls the
model's own ``fit``. Inside :func:`data_parallel`, every :func:`lgrec.train.trainer.train_loop`
of that fit runs data-parallel through :class:`DataParallel` hooks:

* **samples sharded**: process 0 draws each epoch's order of the training pairs and broadcasts
  it; each minibatch of B positives is split by stride, process r taking B/P of them (and
  drawing their negatives from its own random stream). Its loss is scaled by P·B_r/B, so the
  average over processes is the full minibatch's mean loss;
* **gradients all-reduced**: the model's network is wrapped in ``DistributedDataParallel``, so
  after each backward every process holds the average gradient and takes the same Adam step:
  P processes follow one optimisation path with the single-process minibatch size and learning
  rate, which is why they reach the single-process quality (docs/distributed.md);
* **graph** (``graph="partition"``, the default): for networks with a LightGCN-style
  ``propagate(adj, ego)``, the propagation matrix is split by rows over the processes
  (:mod:`lgrec.train.partition`): each process multiplies 1/P of the rows and all-gathers the
  layer. ``graph="replicate"`` keeps the whole graph on every process instead (each process
  propagates everything; only the loss is split);
* **validation** runs in step on every process and process 0's value decides early stopping;
* **checkpoints** (``checkpoint_dir``): after every ``every`` epochs process 0 writes the loop's
  state (weights, Adam state, epoch, early-stopping counters, log and every process's RNG
  state) atomically (:mod:`lgrec.train.checkpoint`); with ``resume=True`` a loop whose
  checkpoint exists continues from it and ends as the uninterrupted run would have.

The processes must run the same code in the same order: everything before and after the loops
(loading, the model's post-fit heads) is computed by each process alike; only process 0
should write results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lgrec.errors import ConfigError
from lgrec.graph.bipartite import SparseOperator
from lgrec.train.checkpoint import load_checkpoint, rng_state, save_checkpoint
from lgrec.train.hooks import LoopHooks, Step, Validate, use_loop_hooks
from lgrec.train.partition import PartitionedOperator
from lgrec.train.trainer import LoopState

log = logging.getLogger(__name__)

GRAPH_MODES = ("partition", "replicate")


class _StepModule(nn.Module):
    """Makes a loss closure over ``net`` DDP's forward, so DDP all-reduces ``net``'s gradients."""

    def __init__(self, net: nn.Module, step: Step):
        super().__init__()
        self.net = net
        self.step = step

    def forward(self, idx: np.ndarray) -> torch.Tensor:
        return self.step(idx)


def _own_stream(rng: np.random.Generator, rank: int) -> None:
    """Move ``rng`` (in place) to a stream of its own for ``rank`` > 0 (rank 0 keeps its)."""
    if rank == 0:
        return
    bg = rng.bit_generator
    if hasattr(bg, "jumped"):
        bg.state = bg.jumped(rank).state
    else:  # generators without jump-ahead: reseed from a rank-specific child seed
        seed = np.random.SeedSequence(int(rng.integers(2**63)), spawn_key=(rank,))
        bg.state = type(bg)(seed).state


class DataParallel(LoopHooks):
    """Loop hooks for data-parallel training in an initialised process group (module docstring).

    Args:
        graph: ``"partition"`` (propagation split by rows) or ``"replicate"``.
        checkpoint_dir: where process 0 writes one checkpoint per loop; ``None`` = none.
        resume: continue loops whose checkpoint exists (otherwise an existing one is an error,
            so a run never overwrites another's state by accident).
        every: checkpoint every this many epochs (and at the last one).
        after_epoch: called on every process after each epoch (after its checkpoint).
        group: the process group (default: the whole world).
    """

    def __init__(
        self,
        graph: str = "partition",
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
        every: int = 1,
        after_epoch: Callable[[LoopState], None] | None = None,
        group: dist.ProcessGroup | None = None,
    ):
        if graph not in GRAPH_MODES:
            raise ConfigError(f"DataParallel: graph must be one of {GRAPH_MODES}, got {graph!r}")
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"DataParallel: every must be a positive integer, got {every!r}")
        if not dist.is_initialized():
            raise ConfigError(
                "DataParallel needs a torch.distributed process group: run under torchrun "
                "(see docs/distributed.md) or use data_parallel()"
            )
        self.graph, self.every, self.after_epoch = graph, every, after_epoch
        self.dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.resume = resume
        self.group = group
        # the graph's collectives get their own group, so they never interleave with DDP's
        self.graph_group = dist.new_group(dist.get_process_group_ranks(group or dist.group.WORLD))
        self.rank, self.world = dist.get_rank(group), dist.get_world_size(group)
        self.src = dist.get_global_rank(group, 0) if group is not None else 0  # process 0
        self.loops = 0
        self._patched: nn.Module | None = None

    # ---- the hooks ---------------------------------------------------------------------
    def begin(
        self, state: LoopState, step: Step, validate: Validate | None
    ) -> tuple[Step, Validate | None]:
        self.loops += 1
        path = self.checkpoint_path(state.desc)
        # process 0 reads the checkpoint and sends it: other machines need not see the folder
        box = [path.read_bytes() if path is not None and self.rank == 0 and path.exists() else None]
        dist.broadcast_object_list(box, src=self.src, group=self.group)
        if box[0] is not None:
            if not self.resume:
                raise ConfigError(
                    f"checkpoint {path} already exists: resume it (lgrec train --resume) or "
                    "use a new checkpoint directory"
                )
            load_checkpoint(box[0], state, self.rank, self.world, name=str(path))
            log.info("resumed %s from %s at epoch %d", state.desc, path, state.epoch)
        else:
            _own_stream(state.rng, self.rank)
        state.show_progress = self.rank == 0
        if self.graph == "partition":
            self._partition(state.module)
        n_params = sum(p.requires_grad for p in state.module.parameters())
        ddp = DistributedDataParallel(
            _StepModule(state.module, step),
            process_group=self.group,
            forward_sync_buffers=False,  # buffers (e.g. text features) are constant
            find_unused_parameters=n_params > 1,  # e.g. a head that sees no example in a shard
        )

        def shard_step(idx: np.ndarray) -> torch.Tensor:
            if len(idx) < self.world:  # too few to split: every process takes them all
                return ddp(idx)
            mine = idx[self.rank :: self.world]
            return ddp(mine) * (len(mine) * self.world / len(idx))

        in_step = self._patched is not None  # validation propagates with collectives

        def validate_all() -> float:
            v = validate() if in_step or self.rank == 0 else 0.0
            t = torch.tensor([float(v)], dtype=torch.float64)
            dist.broadcast(t, src=self.src, group=self.group)
            return float(t)

        return shard_step, (validate_all if validate is not None else None)

    def permutation(self, state: LoopState, n: int) -> np.ndarray:
        if self.rank == 0:
            t = torch.from_numpy(state.rng.permutation(n).astype(np.int64))
        else:
            t = torch.empty(n, dtype=torch.int64)
        dist.broadcast(t, src=self.src, group=self.group)
        return t.numpy()

    def end_epoch(self, state: LoopState) -> None:
        t = torch.tensor([state.log.losses[-1]], dtype=torch.float64)
        dist.all_reduce(t, group=self.group)
        state.log.losses[-1] = float(t) / self.world
        last = state.stopped or state.epoch == state.settings["epochs"]
        path = self.checkpoint_path(state.desc)
        if path is not None and (state.epoch % self.every == 0 or last):
            states: list = [None] * self.world
            dist.all_gather_object(states, rng_state(state.rng), group=self.group)
            if self.rank == 0:
                save_checkpoint(path, state, states, self.world)
            dist.barrier(group=self.group)
        if self.rank == 0:
            log.info(
                "%s epoch %d/%d loss %.4f (%d processes, %.2f s/epoch)",
                state.desc, state.epoch, state.settings["epochs"], state.log.losses[-1],
                self.world, state.log.seconds_per_epoch,
            )  # fmt: skip
        if self.after_epoch is not None:
            self.after_epoch(state)

    def end(self, state: LoopState) -> None:
        self.restore()

    # ---- helpers -----------------------------------------------------------------------
    def checkpoint_path(self, desc: str) -> Path | None:
        """The checkpoint file of the current loop (loops are numbered in call order)."""
        return None if self.dir is None else self.dir / f"loop{self.loops}-{desc}.safetensors"

    def _partition(self, net: nn.Module) -> None:
        """Route ``net.propagate(adj, ego)`` through a row-partitioned copy of ``adj``."""
        method = getattr(type(net), "propagate", None)
        if method is None:
            return
        parts: dict[int, tuple[SparseOperator, PartitionedOperator]] = {}

        def propagate(adj, ego=None):
            if not isinstance(adj, SparseOperator):
                return method(net, adj, ego)
            if id(adj) not in parts:  # keep adj referenced so its id stays unique
                parts[id(adj)] = (adj, PartitionedOperator(adj, self.graph_group))
            return method(net, parts[id(adj)][1], ego)

        net.propagate = propagate
        self._patched = net

    def restore(self) -> None:
        """Give the network back its own propagation (no collectives after the loop)."""
        if self._patched is not None:
            del self._patched.propagate
            self._patched = None


def _init_gloo() -> None:
    """The gloo process group from torchrun's environment.

    Its keys go under a prefix naming torchrun's restart count: the store of a restarted run
    (``--max-restarts``) still holds the addresses the killed attempt's processes published,
    and a restarted process that read one of those would try to connect to a dead process."""
    store, rank, world = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    prefixed = dist.PrefixStore(f"lgrec/attempt-{attempt}", store)
    dist.init_process_group("gloo", store=prefixed, rank=rank, world_size=world)


@contextmanager
def data_parallel(**kw) -> Iterator[DataParallel]:
    """Run the block's training loops data-parallel (``kw``: :class:`DataParallel`'s args).

    Initialises the gloo process group from torchrun's environment when none exists, and
    destroys it again at the end if it created it.
    """
    created = False
    if not dist.is_initialized():
        try:  # from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
            _init_gloo()
        except ValueError as e:
            raise ConfigError(
                f"data-parallel training must be started by torchrun ({e}); see docs/distributed.md"
            ) from e
        created = True
    hooks = DataParallel(**kw)
    try:
        with use_loop_hooks(hooks):
            yield hooks
    finally:
        hooks.restore()
        if created:
            dist.destroy_process_group()
