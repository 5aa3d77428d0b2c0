"""Errors a user can fix. The CLI prints them as one line and exits with status 2."""


class SslbenchError(Exception):
    """Base: the message names the file or option and what to do."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(SslbenchError, ValueError):
    """A bad input file."""


class ConfigError(SslbenchError, ValueError):
    """A bad option or config value."""


class UnknownComponentError(SslbenchError, KeyError):
    """A name that no registry knows."""
