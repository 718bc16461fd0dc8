"""modelpool: zero-copy, read-only views of models held by a modelpool broker.

    import modelpool
    c = modelpool.Client()                       # or Client(socket="/run/.../pool.sock")
    with c.acquire("org/model.safetensors") as m:
        m.bytes()                                # read-only memoryview into the pool
        m.tensor_names()                         # list[str], file order
        m.tensor("l1.weight")                    # read-only numpy.ndarray, no copy
        m.state_dict()                           # {name: torch.Tensor} sharing the pool
    with c.acquire("hf:org/model") as m:         # a repository: one model of several files
        m.files()                                # [{name, size, format, weights}]
        m.file("config.json")                    # read-only memoryview into the pool
        m.commit                                 # the snapshot's commit

Views keep the model mapped: after release() (or the end of the ``with``
block) the broker reference is dropped when the last view is collected.
Errors are ``modelpool.Error`` subclasses carrying the protocol's ``code``.
See docs/python.md.
"""

from .errors import (
    BadRequest,
    Error,
    Forbidden,
    Internal,
    InvalidName,
    LoadFailed,
    NotFound,
    PoolFull,
    ProtocolError,
    ShuttingDown,
    StaleHandle,
    TooLarge,
    Unavailable,
    UnknownOp,
    error_class,
)
from ._modelpool import Client, Model, __version__

__all__ = [
    "Client", "Model", "Error", "error_class", "BadRequest", "UnknownOp", "InvalidName",
    "NotFound", "TooLarge", "PoolFull", "LoadFailed", "Forbidden", "StaleHandle",
    "ShuttingDown", "Unavailable", "ProtocolError", "Internal", "__version__",
]
