"""Model.state_dict(): torch tensors over the pool's memory, without a copy.

torch has no read-only tensors. Given a read-only buffer or a non-writeable
numpy array, torch.frombuffer / torch.from_numpy still return a tensor that
claims to be writable, and warn once per process ("The given NumPy array is
not writable ..."). The binding hands torch.from_numpy an array whose
WRITEABLE flag is set (``Model._torch_array``) instead, so nothing is copied,
no warning is issued (or consumed for the rest of the process), and no
global warnings filter is touched (which would not be thread-safe). The
pages themselves are mapped PROT_READ: an in-place write through such a
tensor kills the process with SIGSEGV and never reaches the pool.

dtypes: every dtype numpy and torch share maps directly; BF16 (numpy has no
bfloat16) is viewed as torch.bfloat16; F8_* as torch's float8 types where
this torch has them, else uint8; U16/U32/U64 as the signed type of the same
width where torch lacks unsigned ones (same bits); quantised GGUF tensors are
uint8 tensors of their bytes, one row per ggml row.
"""

import numpy as np


def _import_torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is optional
        raise ImportError("Model.state_dict() needs torch (Debian: python3-torch)") from e
    return torch


def _views(torch):
    """{file dtype: (numpy dtype to view the array as, torch dtype to view the tensor as)}.

    Both views keep the element size, so they apply to the array the binding
    makes for that dtype (and to nothing else: see the itemsize check below).
    """
    table = {"BF16": (np.int16, torch.bfloat16)}
    for name, signed in (("U16", np.int16), ("U32", np.int32), ("U64", np.int64)):
        if not hasattr(torch, name.replace("U", "uint")):
            table[name] = (signed, None)
    for name, attr in (("F8_E5M2", "float8_e5m2"), ("F8_E4M3", "float8_e4m3fn"),
                       ("F8_E8M0", "float8_e8m0fnu")):
        if hasattr(torch, attr):
            table[name] = (np.uint8, getattr(torch, attr))
    return table


def state_dict(model):
    """{name: torch.Tensor} in file order, each sharing the pool's memory.

    The tensors keep the model mapped (and its broker reference held) until
    the last of them is collected, like the numpy arrays they wrap.
    """
    torch = _import_torch()
    views = _views(torch)
    out = {}
    for name in model.tensor_names():
        arr = model._torch_array(name)
        np_view, torch_view = views.get(model.tensor_info(name)["dtype"], (None, None))
        # A mismatch means the array fell back to raw bytes: leave it as uint8.
        if np_view is not None and np.dtype(np_view).itemsize == arr.dtype.itemsize:
            t = torch.from_numpy(arr.view(np_view))
            out[name] = t.view(torch_view) if torch_view is not None else t
        else:
            out[name] = torch.from_numpy(arr)
    return out
