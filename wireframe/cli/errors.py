"""CLI errors: printed as one line, without a traceback, with the exit code they carry."""

from __future__ import annotations


class CLIError(Exception):
    """A command that failed (exit code 1): unknown job, a refused transition, a dead store."""

    exit_code = 1


class UsageError(CLIError):
    """A command given bad input (exit code 2): a bad URL, id, duration, payload or app path."""

    exit_code = 2
