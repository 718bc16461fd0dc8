# File: bench/harness/hugepages.py
#
# Scratch filesystems on 2 MiB pages for scenario 1's huge-page rows: a
# tmpfs mounted with huge=always, or hugetlbfs with pages added to the
# kernel's 2 MiB pool for it. huge_mount() yields (directory, "") or
# (None, reason) when the host cannot (not root, THP denied, too few pages),
# and undoes everything on exit -- Ctrl-C and SIGTERM included (the driver
# turns SIGTERM into SystemExit): unmount, remove the directory, take back
# exactly the pages it added (relative, so others' changes survive). A
# hugetlbfs has each page written once before it is yielded
# (_touch_every_page).
import contextlib
import os
import subprocess
import tempfile

from harness.common import MiB, log

POOL_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB"


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _nr_hugepages():
    return int(_read(os.path.join(POOL_2M, "nr_hugepages")))


def _set_nr_hugepages(n):
    with open(os.path.join(POOL_2M, "nr_hugepages"), "w") as f:
        f.write(f"{n}\n")


def _mount_options(path):
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                return fields[3]
    return ""


@contextlib.contextmanager
def _added_pages(pages):
    """Adds `pages` 2 MiB pages to the kernel's pool; yields '' or why not."""
    before = _nr_hugepages()
    _set_nr_hugepages(before + pages)
    got = _nr_hugepages() - before
    if got < pages:
        _set_nr_hugepages(_nr_hugepages() - max(got, 0))
        yield (f"the kernel added only {got} of {pages} 2 MiB huge pages "
               "(too little free or too fragmented memory)")
        return
    try:
        yield ""
    finally:
        _set_nr_hugepages(max(_nr_hugepages() - pages, 0))


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
    if os.geteuid() != 0:
        yield None, f"mounting a {kind} needs root (run the bench as root)"
        return
    if kind == "tmpfs":
        enabled = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
        if not os.path.exists(enabled) or "[deny]" in _read(enabled):
            yield None, f"huge pages on tmpfs are unavailable or denied ({enabled})"
            return
        pages_cm = contextlib.nullcontext("")
    else:
        if not os.path.isdir(POOL_2M):
            yield None, f"this kernel has no 2 MiB huge pages ({POOL_2M})"
            return
        pages_cm = _added_pages((size + 2 * MiB - 1) // (2 * MiB))
    with pages_cm as why:
        if why:
            yield None, why
            return
        d = tempfile.mkdtemp(prefix=f"mpbench-{kind}-")
        opts = (f"size={size},huge=always,mode=0755" if kind == "tmpfs"
                else f"pagesize=2M,size={size},mode=0755")
        out = subprocess.run(["mount", "-t", kind, "-o", opts, "mpbench-huge", d],
                             capture_output=True, text=True)
        if out.returncode != 0:
            os.rmdir(d)
            yield None, f"mount -t {kind} -o {opts}: {out.stderr.strip()}"
            return
        try:
            if kind == "tmpfs" and "huge=always" not in _mount_options(d).split(","):
                yield None, f"the kernel ignored huge=always ({_mount_options(d)})"
            else:
                if kind == "hugetlbfs":
                    _touch_every_page(d, size)
                yield d, ""
        finally:
            if subprocess.run(["umount", d], capture_output=True).returncode != 0:
                log(f"umount {d} failed; detaching it")
                subprocess.run(["umount", "-l", d], check=False)
            os.rmdir(d)
