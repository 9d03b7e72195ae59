"""Every failure a user can cause, one class each, with a message that says the fix."""

from __future__ import annotations


class CfmonError(Exception):
    """Base class: the CLI prints these without a traceback."""

    exit_code = 1


class ConfigError(CfmonError):
    """The monitor config file is unreadable or invalid.

    ``problems`` holds one line per problem, each naming the file, the key and
    what is expected, so that a user can fix them all in one pass.
    """

    exit_code = 2

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"config {path}: {problems[0]}")
            return
        lines = "\n".join(f"  {path}: {p}" for p in problems)
        super().__init__(f"{len(problems)} problems in config {path}:\n{lines}")


class DatabaseError(CfmonError):
    """The database file cannot be opened or is not a cfmon database."""

    exit_code = 2


class DatabaseBusyError(CfmonError):
    """Another program held the database's write lock for longer than cfmon waits."""

    exit_code = 1


class DatabaseWriteError(CfmonError):
    """SQLite refused a write for another reason (an I/O error, a read-only file)."""

    exit_code = 1


class DiskFullError(CfmonError):
    """The disk under the database is full: nothing of the write was kept."""

    exit_code = 1


class WriteFailedError(CfmonError):
    """A crawl could not write what it read (database locked, disk full): it stopped."""

    exit_code = 1


class TimestampError(CfmonError):
    """A time-stamp token could not be had from the TSA, or does not verify."""

    exit_code = 1


class BundleExistsError(CfmonError):
    """An evidence bundle would be written into a folder that already holds files."""

    exit_code = 2


class RatesError(CfmonError):
    """The ECB's reference rates could not be fetched or read."""

    exit_code = 1


class PageFileError(CfmonError):
    """A saved page given to `cfmon extract` cannot be read."""

    exit_code = 2


class PasswordsFileError(CfmonError):
    """The reviewer accounts file given to `cfmon browse --passwords` cannot be used."""

    exit_code = 2


class UnknownListingError(CfmonError):
    """A listing id given on the command line is not in the database."""

    exit_code = 2


class NotFlaggedError(CfmonError):
    """A verdict names a listing that was never flagged: most likely a mistyped id."""

    exit_code = 2


class VerdictConflictError(CfmonError):
    """A verdict would silently replace a different earlier verdict."""

    exit_code = 1


class VerifyError(CfmonError):
    """The evidence in the database does not match its hashes."""

    exit_code = 1


class LockedError(CfmonError):
    """Another crawl holds the database."""

    exit_code = 3


class SiteFailedError(CfmonError):
    """The crawl ran, but at least one site gave nothing usable."""

    exit_code = 1


class LabelsError(CfmonError):
    """The labels file given to `cfmon evaluate` cannot be read."""

    exit_code = 2
