"""What the benchmark reads off the system: the API server's request counters, and a process's
CPU time and memory from /proc."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from bench import attribution
from testground.kubeapi import Api

Key = attribution.Key


async def metrics(api: Api) -> str:
    """The API server's /metrics text."""
    async with api.session.get("/metrics") as resp:
        return await resp.text()


def request_counts(text: str) -> Counter[Key]:
    """apiserver_request_total by verb and resource, all clients together."""
    counts: Counter[Key] = Counter()
    for labels, value in attribution.samples(text, "apiserver_request_total"):
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[(labels.get("verb", ""), resource)] += int(value)
    return counts


def diff(after: Counter[Key], before: Counter[Key]) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for k, v in after.items():
        if v - before.get(k, 0) > 0:
            out[k] = v - before.get(k, 0)
    return out


@dataclass(frozen=True)
class Requests:
    """The API server's request counts at one moment: all clients', and the operator's own."""

    all: Counter[Key]
    operator: Counter[Key]

    def since(self, before: Requests) -> Requests:
        return Requests(diff(self.all, before.all), diff(self.operator, before.operator))


async def requests(api: Api) -> Requests:
    """Both counts from one read of /metrics."""
    text = await metrics(api)
    return Requests(request_counts(text), attribution.operator_requests(text))


@dataclass(frozen=True)
class ProcStats:
    cpu_seconds: float
    rss_mb: float
    peak_rss_mb: float


def proc_stats(pid: int) -> ProcStats:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    rss = peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return ProcStats(cpu, rss, peak)
