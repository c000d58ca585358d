"""The command line's error type and argparse subclasses.

A ``UsageError`` is reported as one line ``layerparallel: error: ...`` with
exit status 2; ``Parser`` turns argparse's own errors into one.
"""

import argparse


class UsageError(Exception):
    """A user error: reported as one line, exit status 2."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None, booleans and where the help already says it."""

    def _get_help_string(self, action):
        if (action.default is None or isinstance(action.default, bool)
                or "default" in (action.help or "")):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse, but errors raise UsageError (one line, no usage block)."""

    def error(self, message):
        raise UsageError(message)


def version():
    try:
        from importlib.metadata import version as _version

        return _version("layerparallel")
    except Exception:
        return "unknown"
