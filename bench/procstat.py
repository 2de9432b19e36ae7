"""What the Python benchmarks read about processes (from /proc) and how they sum up latencies."""

import os


def cpu_seconds(pid):
    """User + system CPU seconds of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid):
    return _status_mb(pid, "VmRSS:")


def peak_rss_mb(pid):
    return _status_mb(pid, "VmHWM:")


def pct(values, p):
    """The p-quantile (0 < p < 1) of `values`, 0 when empty."""
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0
