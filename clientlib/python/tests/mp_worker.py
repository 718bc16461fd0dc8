"""A worker process for test_sharing: acquires MODEL from SOCKET, reads every
byte through numpy arrays, checks that the arrays lie in the segment's
mapping, prints one JSON line, then holds the model until stdin closes."""

import json
import sys

import numpy as np

import modelpool
from procinfo import in_segment


def main(socket, model):
    c = modelpool.Client(socket=socket)
    m = c.acquire(model)
    total, inside = 0.0, True
    for name, arr in m.tensors().items():
        total += float(arr.sum(dtype=np.float64))       # touches every page
        inside = inside and in_segment(arr.__array_interface__["data"][0], arr.nbytes,
                                       c.segment_path)
    print(json.dumps({"ok": True, "sum": total, "in_segment": inside, "cached": m.cached,
                      "read_only": not any(a.flags.writeable for a in m.tensors().values())}),
          flush=True)
    sys.stdin.read()  # hold until the parent closes stdin
    m.release()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
