"""Progress of long work: a bar on a terminal, progress lines with an ETA in logs and pipes.

Two helpers cover every long step:

* :func:`progress` wraps a loop with a known length (epochs, batches, blocks of users);
* :func:`working` wraps one long call whose inside cannot report (a closed-form fit, loading a
  model): it reports the elapsed time while the call runs.

How progress is shown depends on where stderr goes (``LGREC_PROGRESS`` overrides it):

``bar``
    tqdm bars — the default when stderr is a terminal and ``CI`` is not ``true``.
``lines``
    one plain line every ``LGREC_PROGRESS_INTERVAL`` seconds (default 10) while the work runs,
    and a closing line when it took longer than that — the default for files, pipes and CI::

        lgrec: fitting lightgcn (3/6) › lightgcn epochs: 12/50 (24%), 31 s elapsed, ETA 1m38s

    The ETA assumes the remaining steps take as long as the mean step so far:
    :math:`\\mathrm{ETA} = t \\cdot (N - n) / n` after :math:`n` of :math:`N` steps in
    :math:`t` seconds. Only the innermost active step prints; its line names the steps
    around it. Work shorter than the interval prints nothing.
``off``
    nothing.

Lines are written by one daemon thread, so a step that blocks for minutes inside one iteration
still reports; they go to ``sys.stderr`` as it is at the time of writing. Entering a step costs
a list append (no thread per step), so short loops such as a server encoding one query are
free.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["format_seconds", "note", "progress", "progress_mode", "working"]

_ACTIVE: list[_Reporter] = []  # nested steps, outermost first
_LOCK = threading.Lock()
_TICKER: threading.Thread | None = None  # one thread prints for every step


def _tick() -> None:
    """Forever: every quarter interval (≤ 0.5 s), print the innermost step's line when its
    last line (or its start) is one interval old."""
    while True:
        interval = _interval()
        time.sleep(min(interval / 4, 0.5))
        with _LOCK:
            rep = _ACTIVE[-1] if _ACTIVE else None
            outer = [r.brief() for r in _ACTIVE[:-1]]
            now = time.perf_counter()
            if rep is None or now - rep.last < interval:
                continue
            rep.last = now
        if not rep.closed:
            rep._print(rep.status(), outer)


def progress_mode() -> str:
    """``"bar"``, ``"lines"`` or ``"off"`` (module docstring)."""
    mode = os.environ.get("LGREC_PROGRESS", "auto").strip().lower()
    if mode in ("bar", "lines", "off"):
        return mode
    if os.environ.get("CI") == "true" or not _isatty():
        return "lines"
    return "bar"


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _interval() -> float:
    raw = os.environ.get("LGREC_PROGRESS_INTERVAL", "10")
    try:
        value = float(raw)
    except ValueError:
        value = 10.0
    return max(value, 0.01)


def format_seconds(s: float) -> str:
    """``4.2 s``, ``42 s``, ``3m05s``, ``1h02m``."""
    s = max(0.0, s)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


class _Reporter:
    """One step in ``lines`` mode: counters read by a thread that prints every interval."""

    def __init__(
        self, desc: str, total: int | None, unit: str, expect: float | None = None
    ) -> None:
        self.desc, self.total, self.unit, self.expect = desc, total, unit, expect
        self.n = 0
        self.postfix = ""
        self.t0 = time.perf_counter()
        self.last = self.t0  # time of the last line (or of the start)
        self.printed = False
        self.closed = False

    def start(self) -> _Reporter:
        global _TICKER
        with _LOCK:
            _ACTIVE.append(self)
            if _TICKER is None or not _TICKER.is_alive():  # (a forked child has none)
                _TICKER = threading.Thread(target=_tick, name="lgrec-progress", daemon=True)
                _TICKER.start()
        return self

    def brief(self) -> str:
        """The step as named around an inner one: ``models 3/6`` (the item under way)."""
        if self.total:
            return f"{self.desc} {min(self.n + 1, self.total)}/{self.total}"
        return self.desc

    def status(self, done: bool = False) -> str:
        t = time.perf_counter() - self.t0
        if done:
            return f"{self.desc}: done in {format_seconds(t)}"
        if self.total:
            pct = 100.0 * self.n / self.total
            head = f"{self.desc}: {self.n}/{self.total} {self.unit} ({pct:.0f}%)"
            eta = f", ETA {format_seconds(t * (self.total - self.n) / self.n)}" if self.n else ""
            text = f"{head}, {format_seconds(t)} elapsed{eta}"
        elif self.unit:
            text = f"{self.desc}: {self.n} {self.unit}, {format_seconds(t)} elapsed"
        else:
            text = f"{self.desc}: working, {format_seconds(t)} elapsed"
            if self.expect:
                left = self.expect - t
                text += f", ETA {format_seconds(left)}" if left > 0 else ", ETA overdue"
        return text + (f" [{self.postfix}]" if self.postfix else "")

    def _print(self, text: str, outer: list[str]) -> None:
        line = "lgrec: " + " › ".join([*outer, text])
        try:
            print(line, file=sys.stderr, flush=True)
            self.printed = True
        except (ValueError, OSError):  # stderr closed under us: stay quiet
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            outer = [r.brief() for r in _ACTIVE]
        if self.printed or time.perf_counter() - self.t0 >= _interval():
            self._print(self.status(done=True), outer)


class _Lines(Iterator[T]):
    """Iterator of :func:`progress` in ``lines`` mode (tqdm-like ``set_postfix``)."""

    def __init__(self, it: Iterable[T], desc: str, total: int | None, unit: str) -> None:
        if total is None and hasattr(it, "__len__"):
            total = len(it)  # type: ignore[arg-type]
        self._it = iter(it)
        self._count = 0
        self._rep = _Reporter(desc, total, unit).start()

    def __iter__(self) -> _Lines[T]:
        return self

    def __next__(self) -> T:
        self._rep.n = self._count  # the items handed out so far are done
        try:
            item = next(self._it)
        except BaseException:
            self._rep.close()
            raise
        self._count += 1
        return item

    def set_postfix(self, **kw: Any) -> None:
        self._rep.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        self._rep.close()

    def __del__(self) -> None:
        self._rep.close()


def progress(
    it: Iterable[T],
    desc: str = "",
    total: int | None = None,
    *,
    disable: bool | None = None,
    unit: str = "",
    **kw: Any,
) -> Iterable[T]:
    """``it`` with progress: a tqdm bar on a terminal, lines with an ETA elsewhere; both have
    tqdm's ``set_postfix``, except when progress is off.

    ``disable=True`` turns it off (so does ``LGREC_PROGRESS=off``); extra keywords go to tqdm.
    """
    mode = progress_mode()
    if disable or mode == "off":
        return iter(it)
    if mode == "lines":
        return _Lines(it, desc or "working", total, unit or "steps")
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, leave=False, unit=unit or "it", **kw)


@contextlib.contextmanager
def working(desc: str, expect: float | None = None) -> Iterator[None]:
    """Report the elapsed time of one long step while its body runs (module docstring).

    On a terminal a spinner-like bar counts the seconds; in logs and pipes a line every
    interval, and ``desc: done in …`` at the end when it took longer than one interval.
    ``expect`` (seconds, e.g. the time the same step took before) adds an ETA of
    ``expect − elapsed``.
    """
    mode = progress_mode()
    if mode == "off":
        yield
        return
    if mode == "lines":
        rep = _Reporter(desc, None, "", expect).start()
        try:
            yield
        finally:
            rep.close()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", leave=False)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1.0):
            bar.refresh()

    th = threading.Thread(target=tick, name=f"progress:{desc}", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()
        bar.close()


def note(message: str) -> None:
    """One status line on stderr (``lgrec: message``) unless ``LGREC_PROGRESS=off``: what a
    command is about to do or where it writes, said when it starts."""
    if progress_mode() != "off":
        print(f"lgrec: {message}", file=sys.stderr, flush=True)
