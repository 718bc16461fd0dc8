"""The exceptions of modelpool: one class per protocol error code.

Every error the client raises is a ``modelpool.Error`` whose ``code`` is the
protocol's spelling (docs/protocol.md) and whose ``message`` is the broker's
or the library's text. Catch a subclass for one code::

    try:
        m = client.acquire("org/model.safetensors")
    except modelpool.NotFound:
        ...
    except modelpool.Error as e:
        log(e.code, e.message)
"""


class Error(Exception):
    """A modelpool failure; ``code`` is the protocol's error code."""

    code = "internal"

    def __init__(self, message="", code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return f"{self.code}: {self.message}" if self.message else self.code


class BadRequest(Error):
    """Malformed request (also: a bad argument to the library)."""
    code = "bad_request"


class UnknownOp(Error):
    code = "unknown_op"


class InvalidName(Error):
    """Empty, absolute, '..' or otherwise invalid model name."""
    code = "invalid_name"


class NotFound(Error):
    """No such model file, or no such tensor in the model."""
    code = "not_found"


class TooLarge(Error):
    """The model can never fit the pool."""
    code = "too_large"


class PoolFull(Error):
    """No room now: everything evictable is referenced or pinned."""
    code = "pool_full"


class LoadFailed(Error):
    """The file could not be read or is not valid safetensors/GGUF."""
    code = "load_failed"


class Forbidden(Error):
    code = "forbidden"


class StaleHandle(Error):
    """The Model was released (or the broker no longer knows the handle)."""
    code = "stale_handle"


class ShuttingDown(Error):
    code = "shutting_down"


class Unavailable(Error):
    """The broker cannot be reached (client side only)."""
    code = "unavailable"


class ProtocolError(Error):
    """The broker's reply broke the protocol (client side only)."""
    code = "protocol_error"


class Internal(Error):
    code = "internal"


_BY_CODE = {cls.code: cls for cls in (
    BadRequest, UnknownOp, InvalidName, NotFound, TooLarge, PoolFull, LoadFailed,
    Forbidden, StaleHandle, ShuttingDown, Unavailable, ProtocolError, Internal)}


def error_class(code):
    """The exception class of protocol code ``code`` (Error for an unknown one)."""
    return _BY_CODE.get(code, Error)
