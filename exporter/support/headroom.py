"""How much more memory this process can take: the kernel's ``MemAvailable``, or less when the
process's cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) caps it lower, as a container
limit does. Used to refuse work whose size would not fit (a configuration file too large to load)
with a sentence that says so, instead of a fixed byte limit or an OOM kill.
"""

from __future__ import annotations

from pathlib import Path

_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge number (9223372036854771712)


def available_bytes(root: Path = Path("/")) -> int | None:
    """Bytes this process can still allocate, or None when the system says nothing (not Linux)."""
    figures = [f for f in (_meminfo_available(root), _cgroup_headroom(root)) if f is not None]
    return min(figures) if figures else None


def _meminfo_available(root: Path) -> int | None:
    try:
        text = (root / "proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "MemAvailable:" and fields[1].isdigit():
            return int(fields[1]) * 1024
    return None


def _cgroup_headroom(root: Path) -> int | None:
    """limit - usage of the process's memory cgroup, or None when it has no limit."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates: list[tuple[Path, str, str]] = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        relative = path.lstrip("/")
        if controllers == "":  # cgroup v2; in a container's namespace its own cgroup is the root
            for base in (root / "sys/fs/cgroup" / relative, root / "sys/fs/cgroup"):
                candidates.append((base, "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):
            for base in (root / "sys/fs/cgroup/memory" / relative, root / "sys/fs/cgroup/memory"):
                candidates.append((base, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    for base, limit_file, usage_file in candidates:
        try:
            limit_text = (base / limit_file).read_text().strip()
            usage = int((base / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= _UNLIMITED:
            return None
        return max(0, int(limit_text) - usage)
    return None
