"""Blocking iterators (``Rag.stream``) read from async code: one daemon thread drives the iterator and hands
each item to the event loop, so a slow model never blocks other requests. When the client goes away the
thread stops at the next item and closes the iterator (which releases the model)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Threaded(Generic[T]):
    """``async for item in Threaded(make)``: ``make()`` is called and iterated in a thread of its own."""

    def __init__(self, make: Callable[[], Iterator[T]], name: str = "rag-http-stream") -> None:
        self._loop = asyncio.get_running_loop()
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = threading.Event()
        self._make = make
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening any more
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)

    def _run(self) -> None:
        try:
            with contextlib.closing(self._make()) as items:  # type: ignore[type-var]
                for item in items:
                    if self._stop.is_set():
                        return
                    self._put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which answers with it
            self._put(_Failed(exc))
        finally:
            self._put(_END)

    async def next(self) -> T:
        """The next item; raises the iterator's error, or StopAsyncIteration at its end."""
        item = await self._items.get()
        if item is _END:
            self._items.put_nowait(_END)
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self.next()


async def opening(events: Threaded[Any], passes: Callable[[Any], bool]) -> list[Any]:
    """The first items of ``events``, up to and including the first one ``passes`` does not hold for, read
    before the response starts: so an error up to then (retrieval's, or a busy model's) still gets its status
    and JSON body instead of an ``error`` event in a started stream. The events are closed on an error."""
    items: list[Any] = []
    try:
        while True:
            items.append(await events.next())
            if not passes(items[-1]):
                return items
    except StopAsyncIteration:
        return items
    except BaseException:
        events.close()
        raise


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event with ``data`` as JSON (on one line: JSON escapes newlines)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"
