"""Progress of epochs and partitions: a bar on a terminal, plain log lines otherwise.

Flow tasks run in threads of the process that started the flow, so the command
line installs one reporter for the whole process (``use_reporter``) and tasks
report to whatever is installed; with none installed they report nothing.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from tqdm import tqdm


class Reporter:
    """Progress of named stages: ``start(stage, total)``, ``advance(stage, info)``, ``close``."""

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.bars = bars if bars is not None else _isatty(self.stream)
        self._lock = threading.Lock()
        self._bars: dict[str, tqdm] = {}
        self._counts: dict[str, list[int]] = {}

    def start(self, stage: str, total: int | None, unit: str = "it") -> None:
        """Begin ``stage`` with ``total`` steps (epochs, partitions)."""
        with self._lock:
            self._counts[stage] = [0, total or 0]
            if self.bars:
                old = self._bars.pop(stage, None)
                if old is not None:
                    old.close()
                self._bars[stage] = tqdm(
                    total=total, desc=stage, unit=unit, file=self.stream, leave=True
                )
            else:
                self._line(f"{stage}: started" + (f" ({plural(total, unit)})" if total else ""))

    def advance(self, stage: str, info: Mapping[str, Any] | None = None) -> None:
        """One step of ``stage`` done; ``info`` is shown (losses, rates)."""
        with self._lock:
            count = self._counts.setdefault(stage, [0, 0])
            count[0] += 1
            text = _format(info or {})
            total = f"/{count[1]}" if count[1] else ""
            line = f"{stage}: {count[0]}{total} {text}".rstrip()
            bar = self._bars.get(stage)
            if bar is not None:
                bar.update(1)
                if text:
                    bar.set_postfix_str(text, refresh=True)
                to_prefect(line)
            else:
                self._line(line)

    def finish(self, stage: str) -> None:
        """Close ``stage``'s bar (early stopping can end a stage before its total)."""
        with self._lock:
            bar = self._bars.pop(stage, None)
            if bar is not None:
                bar.close()

    def note(self, text: str) -> None:
        """One line of information (a link, a choice made), above any bars."""
        with self._lock:
            if self._bars:
                tqdm.write(f"[nnpipe] {text}", file=self.stream)
                to_prefect(text)
            else:
                self._line(text)

    def close(self) -> None:
        """Close every bar."""
        for stage in list(self._bars):
            self.finish(stage)

    def _line(self, text: str) -> None:
        # Written, not print()ed: Prefect may redirect print inside flows to its logger.
        self.stream.write(f"[nnpipe] {text}\n")
        self.stream.flush()
        to_prefect(text)


_prefect_logger: logging.Logger | None = None


def to_prefect(text: str) -> None:
    """Send a progress line to the current Prefect flow run's logs (its Logs tab).

    Through a logger of its own that only Prefect's API handler listens to, so the
    terminal shows the line once. Outside a flow or task run it goes nowhere.
    """
    global _prefect_logger
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return
    if _prefect_logger is None:
        from prefect.logging.handlers import APILogHandler

        logger = logging.getLogger("nnpipe.progress")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(APILogHandler())
        _prefect_logger = logger
    _prefect_logger.info(text)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _format(info: Mapping[str, Any]) -> str:
    parts = []
    for key, value in info.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts)


_current: Reporter | None = None


def current() -> Reporter | None:
    """The reporter installed for this process, if any."""
    return _current


@contextlib.contextmanager
def use_reporter(reporter: Reporter | None) -> Iterator[Reporter | None]:
    """Install ``reporter`` for the duration of the block."""
    global _current
    previous, _current = _current, reporter
    try:
        yield reporter
    finally:
        if reporter is not None:
            reporter.close()
        _current = previous


def plural(n: int, unit: str) -> str:
    """``n`` and ``unit``, plural unless n is 1: "3 steps", "1 partition"."""
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


class _Discard:
    """A stream that keeps nothing: progress with no terminal still reaches Prefect."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


# Without an installed reporter (a flow called from Python, a scheduled run) progress
# lines go only to the flow run's logs in Prefect.
_unattended = Reporter(_Discard(), bars=False)


def _reporter() -> Reporter:
    return _current if _current is not None else _unattended


def start(stage: str, total: int | None, unit: str = "it") -> None:
    """Report the start of ``stage`` (to Prefect's logs only without a reporter)."""
    _reporter().start(stage, total, unit)


def advance(stage: str, info: Mapping[str, Any] | None = None) -> None:
    """Report one step of ``stage`` (to Prefect's logs only without a reporter)."""
    _reporter().advance(stage, info)


def finish(stage: str) -> None:
    """Report the end of ``stage``."""
    _reporter().finish(stage)


def note(text: str) -> None:
    """Show one line of information (to Prefect's logs only without a reporter)."""
    _reporter().note(text)
