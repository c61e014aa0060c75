"""What Linux's ``/proc`` says of a process: CPU time used and peak memory."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every core since boot (``/proc/stat``): the busy share
    between two readings is how much of the machine was used."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and waiting for I/O
    return sum(fields) - idle, sum(fields)


def busy_share(start: tuple[int, int], end: tuple[int, int]) -> float:
    """The share of the machine's cores busy between two :func:`machine_ticks`."""
    return (end[0] - start[0]) / max(1, end[1] - start[1])
