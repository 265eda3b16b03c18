"""Run blocking library calls (an answer stream, an ingest) in a thread, and hand what they report to a Gradio
generator as it arrives. Callbacks fired deep inside the library (retries, ingest progress) become items in
the same queue as streamed tokens, so one loop in the UI shows them all in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Emit = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class Finished:
    value: Any


@dataclass(frozen=True, slots=True)
class Failed:
    error: BaseException


class Stopped(Exception):
    """Raised inside the worker by ``emit`` once the consumer has gone (the user pressed Stop)."""


_END = object()


def run(work: Callable[[Emit], Any], name: str = "ui-worker") -> Iterator[list[Any]]:
    """Call ``work(emit)`` in a daemon thread. Yields batches of emitted items (everything that arrived since
    the last batch, so a fast token stream does not redraw the page per token), then a last batch ending with
    ``Finished(result)`` or ``Failed(error)``. Closing the iterator makes the next ``emit`` raise Stopped."""
    items: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def emit(item: Any) -> None:
        if stop.is_set():
            raise Stopped
        items.put(item)

    def target() -> None:
        try:
            items.put(Finished(work(emit)))
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread, which shows it as a message
            items.put(Failed(exc))
        finally:
            items.put(_END)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        while True:
            batch = [items.get()]
            while True:
                try:
                    batch.append(items.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is _END
            if done:
                batch.pop()
            if batch:
                yield batch
            if done:
                return
    finally:
        stop.set()
