"""exporter.support.headroom: the memory left, from /proc/meminfo and the process's memory cgroup,
read from a fake root laid out as the kernel lays it out."""

from __future__ import annotations

from pathlib import Path

from exporter.support.headroom import available_bytes

MB = 1 << 20


def _root(tmp_path: Path, cgroup: str, files: dict[str, str], available_kb: int = 8 * 1024 * 1024) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/meminfo").write_text(
        f"MemTotal: 16000000 kB\nMemFree: 1000 kB\nMemAvailable: {available_kb} kB\n"
    )
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_meminfo_alone(tmp_path: Path) -> None:
    root = _root(tmp_path, "0::/\n", {})
    assert available_bytes(root) == 8 * 1024 * MB


def test_cgroup_v2_limit_below_the_machine(tmp_path: Path) -> None:
    files = {
        "sys/fs/cgroup/kubepods/pod1/memory.max": f"{512 * MB}\n",
        "sys/fs/cgroup/kubepods/pod1/memory.current": f"{200 * MB}\n",
    }
    root = _root(tmp_path, "0::/kubepods/pod1\n", files)
    assert available_bytes(root) == 312 * MB


def test_cgroup_v2_inside_its_namespace_and_unlimited(tmp_path: Path) -> None:
    # In a container the cgroup path reads "/" and the files are at the root of the mount.
    limited = _root(
        tmp_path / "a",
        "0::/\n",
        {"sys/fs/cgroup/memory.max": f"{256 * MB}", "sys/fs/cgroup/memory.current": f"{56 * MB}"},
    )
    assert available_bytes(limited) == 200 * MB
    unlimited = _root(
        tmp_path / "b", "0::/\n", {"sys/fs/cgroup/memory.max": "max", "sys/fs/cgroup/memory.current": "5"}
    )
    assert available_bytes(unlimited) == 8 * 1024 * MB


def test_cgroup_v1(tmp_path: Path) -> None:
    files = {
        "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": f"{1024 * MB}",
        "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": f"{1000 * MB}",
    }
    root = _root(tmp_path, "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n", files)
    assert available_bytes(root) == 24 * MB
    unlimited = {
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
        "sys/fs/cgroup/memory/memory.usage_in_bytes": "1",
    }
    assert available_bytes(_root(tmp_path / "u", "4:memory:/x\n", unlimited)) == 8 * 1024 * MB


def test_nothing_known(tmp_path: Path) -> None:
    assert available_bytes(tmp_path) is None
