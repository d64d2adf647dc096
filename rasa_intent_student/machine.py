"""What machine a figure was measured on, in the words the cards and benchmarks print."""
import os
import platform


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def describe_machine() -> str:
    """E.g. ``2-core x86_64 CPU, no GPU`` (onnxruntime runs on the CPU here)."""
    return f"{usable_cores()}-core {platform.machine()} CPU, no GPU"
