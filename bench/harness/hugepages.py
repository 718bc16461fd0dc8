# File: bench/harness/hugepages.py
#
# Scratch filesystems on 2 MiB pages for scenario 1's huge-page rows: a
# tmpfs mounted with huge=always, or hugetlbfs with pages added to the
# kernel's 2 MiB pool for it, both set up and undone by scripts/hugepages.sh
# (the one place that knows how). huge_mount() yields (directory, "") or
# (None, reason) when the host cannot (the script's exit status 3: not root,
# THP denied, too few pages), and undoes everything on exit -- Ctrl-C and
# SIGTERM included (the driver turns SIGTERM into SystemExit): `down
# --force` unmounts, removes the directory and takes back exactly the pages
# `up` added. The script's state is kept beside the mount, in a fresh
# directory per mount. A hugetlbfs has each page written once before it is
# yielded (_touch_every_page).
import contextlib
import os
import subprocess
import tempfile

from harness.common import MiB, log

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "scripts", "hugepages.sh")


def _hugepages_sh(state, *args):
    """Runs scripts/hugepages.sh with its state in `state`."""
    env = dict(os.environ, MODELPOOL_HUGEPAGES_STATE_DIR=state)
    return subprocess.run(["/bin/bash", SCRIPT, *args], env=env, capture_output=True, text=True)


def _touch_every_page(d, size):
    """Writes (the kernel zeroes) every page of a fresh hugetlbfs mount once.

    Pages just added to the kernel's pool may be guest memory the hypervisor
    has never backed: the first write to each costs a host fault, which made
    the first load into them 6x slower than the next (0.53 against 3.2 GB/s
    for 512 MiB). A broker that has run a while uses pages that were written
    before; so does the bench, from here."""
    path = os.path.join(d, ".touch")
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            os.posix_fallocate(fd, 0, size // (2 * MiB) * (2 * MiB))
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError as e:  # the timings then include the first writes
        log(f"could not touch the pages of {d} before timing: {e}")


@contextlib.contextmanager
def huge_mount(kind, size):
    """A scratch `kind` ('tmpfs' or 'hugetlbfs') mount of `size` bytes."""
    root = tempfile.mkdtemp(prefix=f"mpbench-{kind}-")
    d, state = os.path.join(root, "mnt"), os.path.join(root, "state")
    try:
        up = _hugepages_sh(state, "up", "--kind", kind, "--size", str(size), "--dir", d)
        if up.returncode != 0:
            why = up.stderr.strip()
            if up.returncode != 3:
                why = f"hugepages.sh up exited {up.returncode}: {why}"
            yield None, why
            return
        if kind == "hugetlbfs":
            _touch_every_page(d, size)
        yield d, ""
    finally:
        left = ""
        if os.path.isdir(state) and os.listdir(state):  # `up` mounted: take it down
            down = _hugepages_sh(state, "down", "--dir", d, "--force")
            if down.returncode != 0:
                left = down.stderr.strip()
        if left:
            log(f"hugepages.sh down --dir {d} --force: {left}; its state is left in {state}")
        else:
            for path in (d, state, root):
                with contextlib.suppress(OSError):
                    os.rmdir(path)
