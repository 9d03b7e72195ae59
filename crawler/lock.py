"""One crawl per database at a time.

An exclusive ``flock`` on ``<db>.lock``: the kernel drops it when the holder dies,
however it dies (SIGKILL included), so a stale lock is taken over without any
guessing about PIDs. The file records who holds it, for the message a second crawl
prints.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from crawler.errors import DatabaseError, LockedError

logger = logging.getLogger(__name__)


class DatabaseLock:
    def __init__(self, db_path: str | Path, command: str):
        self.path = Path(f"{db_path}.lock")
        self.command = command
        self._fd: int | None = None

    def __enter__(self) -> DatabaseLock:
        try:
            # Never through a symlink: the lock file would truncate whatever it points at.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise DatabaseError(f"cannot open the lock file {self.path}: {why}; remove it or "
                                "choose another --db") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LockedError(
                f"{self.path.with_suffix('')} is being crawled by pid {holder.get('pid', '?')} "
                f"since {holder.get('started_at', '?')} ({holder.get('command', '?')}); "
                "this run exits. Wait for it to finish; nothing needs removing.") from None
        previous = _read(fd)
        if previous.get("pid"):
            logger.warning("took over the lock left by pid %s (started %s), which is gone",
                           previous["pid"], previous.get("started_at"))
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({
                "pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }).encode(), 0)
        except OSError as exc:
            # The flock is the lock; who holds it is only for the message (a full disk
            # is for the database writes to report).
            logger.warning("could not note the lock's holder in %s: %s", self.path, exc)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)  # a clean exit leaves no holder behind
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
