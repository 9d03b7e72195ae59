"""Photo analysis in worker processes, so that a crawl uses every core.

Hashing a photo, finding its keypoints and checking them against the catalog costs
tens of milliseconds of CPU, much of it in Python between the C calls, holding the
GIL: in the reactor's thread pool a crawl used little more than one core. Workers
come from a forkserver, not a fork of the crawl (the reactor and the store's writer
run threads a fork would copy mid-lock), and start only when photos queue up (see
``ListingImagesPipeline``), so that a small crawl does not pay for starting them.

A worker that dies (a decoder crashing on a hostile photo, the kernel's OOM killer)
takes only its photos with it: the pool is replaced and the photo tried once more,
then reported as a bad image; the crawl goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any

import cv2
from twisted.internet import defer

from matchers.images import ImageAnalysis, ImageError, ImageMatcher, analyse_image

logger = logging.getLogger(__name__)


class PoolUnavailable(RuntimeError):
    """Worker processes could not be started (no /dev/shm, a process limit): the photo
    is not at fault, and the crawl's threads can analyse it."""


def analyse_photo(data: bytes, matcher: ImageMatcher | None) -> ImageAnalysis:
    """Hashes, thumbnail and the reference photo the image shows (verified by
    geometry); the keypoints are dropped once checked: the verdict is kept, with the
    catalog it was checked against."""
    analysis = analyse_image(data)
    if matcher is not None:
        analysis = replace(analysis, match=matcher.match(analysis), match_key=matcher.key)
    return replace(analysis, features=None, parts=(), tiny=None)


_matcher: ImageMatcher | None = None  # in a worker: the catalog, set once


def _start_worker(matcher: ImageMatcher | None, crawl: int) -> None:
    global _matcher
    _matcher = matcher
    # The workers are the parallelism: OpenCV's own threads would only contend with
    # them for the same cores (2-6% slower per photo, two workers on two cores).
    cv2.setNumThreads(1)
    threading.Thread(target=_exit_with, args=(crawl,), name="cfmon-crawl-watch",
                     daemon=True).start()


def _exit_with(crawl: int) -> None:
    """End this worker when the crawl process ends. A crawl that is killed (the OOM
    killer, a cron timeout's SIGKILL) cannot shut its pool down, and its workers, whose
    parent is the forkserver, would wait for photos forever."""
    try:
        handle = os.pidfd_open(crawl)  # readable once the process has ended (Linux)
    except (AttributeError, OSError):
        while True:  # elsewhere: ask every few seconds
            time.sleep(2)
            try:
                os.kill(crawl, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass  # alive, under another user: the pid was reused, keep asking
    select.select([handle], [], [])
    os._exit(0)


def _in_worker(data: bytes) -> ImageAnalysis:
    return analyse_photo(data, _matcher)


_CLOSED = "the crawl ended before the photo was analysed"


class AnalysisPool:
    """``workers`` processes analysing photos against ``matcher``'s catalog."""

    def __init__(self, workers: int, matcher: ImageMatcher | None):
        self.workers = workers
        self.matcher = matcher
        self._executor: ProcessPoolExecutor | None = None
        self.restarts = 0
        self.closed = False

    @property
    def started(self) -> bool:
        return self._executor is not None

    def start(self) -> None:
        """Start the pool (its workers start with the first photos); PoolUnavailable
        when this system cannot run one."""
        if self._executor is None:
            try:
                context = multiprocessing.get_context("forkserver")
                # Imported once by the forkserver, so that each worker starts in a fork
                # of it instead of importing OpenCV, NumPy and Pillow again.
                context.set_forkserver_preload([__name__])
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=_start_worker,
                    initargs=(self.matcher, os.getpid()))
            except (OSError, ValueError, ImportError) as exc:  # no forkserver, no sem_open
                raise PoolUnavailable(str(exc) or type(exc).__name__) from None

    def analyse(self, data: bytes) -> defer.Deferred:
        """A Deferred firing with the photo's analysis, or failing with ImageError (the
        photo) or PoolUnavailable (the system)."""
        result: defer.Deferred = defer.Deferred()
        self._submit(data, result, attempt=1)
        return result

    def _submit(self, data: bytes, result: defer.Deferred, attempt: int) -> None:
        if self.closed:  # a retry after the crawl closed the pool: start no new one
            result.errback(ImageError(_CLOSED))
            return
        try:
            self.start()
            executor = self._executor
            future = executor.submit(_in_worker, data)
        except BrokenProcessPool:
            future = Future()
            future.set_exception(BrokenProcessPool("the pool was broken"))
        except PoolUnavailable as exc:
            result.errback(exc)
            return
        except (OSError, RuntimeError) as exc:  # starting a worker failed
            result.errback(PoolUnavailable(str(exc) or type(exc).__name__))
            return

        # Imported here: importing it installs a reactor, which is Scrapy's to choose.
        from twisted.internet import reactor

        def done(future: Future) -> None:
            # In the pool's thread: hand the outcome to the reactor's.
            reactor.callFromThread(self._finish, future, executor, data, result, attempt)

        future.add_done_callback(done)

    def _finish(self, future: Future, executor: ProcessPoolExecutor, data: bytes,
                result: defer.Deferred, attempt: int) -> None:
        if future.cancelled():  # the crawl is closing
            result.errback(ImageError(_CLOSED))
            return
        error = future.exception()
        if error is None:
            result.callback(future.result())
        elif isinstance(error, BrokenProcessPool):
            if self._executor is executor:  # the first to notice replaces the pool
                logger.warning("a photo analysis process died; starting new ones")
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
                self.restarts += 1
            if attempt == 1:
                self._submit(data, result, attempt=2)
            else:
                result.errback(ImageError(
                    "the photo's analysis crashed its process twice (a decoder fault "
                    "or too little memory)"))
        else:
            result.errback(error)

    def close(self) -> None:
        self.closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def from_settings(settings: Any, matcher: ImageMatcher | None) -> tuple[AnalysisPool | None, int]:
    """The pool CFMON_IMAGE_PROCESSES asks for and how many photos must wait before it
    starts: None is one worker per core once CFMON_IMAGE_PROCESSES_AFTER photos wait,
    a number that many workers from the first photo, 0 no pool (the reactor's thread
    pool analyses photos)."""
    workers = settings.get("CFMON_IMAGE_PROCESSES")
    if workers is None:
        return AnalysisPool(os.cpu_count() or 1, matcher), \
            settings.getint("CFMON_IMAGE_PROCESSES_AFTER")
    workers = int(workers)
    return (AnalysisPool(workers, matcher) if workers > 0 else None), 0
