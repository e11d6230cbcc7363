"""Errors of the SPL stand-in, kept apart so that every SPL module can raise them."""


class SPLSyntaxError(ValueError):
    """A query the stand-in cannot parse or does not support.

    The server responds to job creation with HTTP 400 and this text as a FATAL message,
    as Splunk does for a search it rejects.
    """


class SPLRuntimeError(RuntimeError):
    """An error while evaluating a parsed query; the server marks the job FAILED with it."""
