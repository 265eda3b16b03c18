"""Retries with exponential backoff and jitter, honouring Retry-After, reported through ``on_retry``."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from rag.errors import ProviderError, RagError

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Diagnosis:
    """What a provider exception means: the error to show, and whether trying again can help."""

    error: RagError
    retryable: bool = False
    retry_after: float | None = None


class OnRetry(Protocol):
    def __call__(self, attempt: int, max_retries: int, error: RagError, delay: float) -> None: ...


def _no_translation(exc: BaseException) -> Diagnosis:
    return Diagnosis(ProviderError(f"{type(exc).__name__}: {exc}"))


@dataclass
class RetryPolicy:
    max_retries: int = 3
    translate: Callable[[BaseException], Diagnosis] = _no_translation
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 60.0)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff * (0.5 + random.random() / 2)  # "equal jitter": spread clients out, keep a floor

    def call(self, fn: Callable[[], T], on_retry: OnRetry | None = None) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except RagError:
                raise
            except Exception as exc:
                diagnosis = self.translate(exc)
                if not diagnosis.retryable or attempt >= self.max_retries:
                    if diagnosis.retryable and self.max_retries:
                        diagnosis.error.message += f" (gave up after {self.max_retries} retries)"
                    raise diagnosis.error from exc
                attempt += 1
                wait = self.delay(attempt, diagnosis.retry_after)
                logger.warning("retrying (%d/%d) in %.1fs: %s", attempt, self.max_retries, wait, diagnosis.error)
                if on_retry is not None:
                    on_retry(attempt, self.max_retries, diagnosis.error, wait)
                self.sleep(wait)
