"""/proc readings for the tests: where the segment is mapped, and Shmem."""


def segment_ranges(segment_path, pid="self"):
    """[(start, end)] of the mappings of `segment_path` in /proc/PID/maps."""
    ranges = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == segment_path:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def in_segment(address, nbytes, segment_path):
    """[address, address + nbytes) lies inside one mapping of the segment."""
    return any(s <= address and address + nbytes <= e for s, e in segment_ranges(segment_path))


def shmem_bytes():
    """Shmem of /proc/meminfo: tmpfs pages, the pool's segment among them."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Shmem in /proc/meminfo")
