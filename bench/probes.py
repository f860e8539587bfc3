"""What the benchmark reads off the system: the API server's request counter, and a process's
CPU time and memory from /proc."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

from testground.kubeapi import Api

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "CREATE", "UPDATE", "APPLY")
Key = tuple[str, str]  # (verb, resource[/subresource])


async def request_counts(api: Api) -> Counter[Key]:
    """apiserver_request_total by verb and resource, from the API server's /metrics."""
    async with api.session.get("/metrics") as resp:
        text = await resp.text()
    counts: Counter[Key] = Counter()
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[(labels.get("verb", ""), resource)] += int(float(m.group("value")))
    return counts


def diff(after: Counter[Key], before: Counter[Key]) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for k, v in after.items():
        if v - before.get(k, 0) > 0:
            out[k] = v - before.get(k, 0)
    return out


# Who makes which writes during a CiJob run: the operator is the only client that creates pods
# of CiJobs, writes CiJob status, and posts events or Secrets in the benchmark's namespaces.
OPERATOR_WRITES = {
    ("POST", "pods"),
    ("DELETE", "pods"),
    ("PATCH", "cijobs/status"),
    ("PUT", "cijobs/status"),
    ("PATCH", "cijobs"),
    ("DELETE", "cijobs"),
    ("POST", "events"),
    ("PATCH", "events"),
    ("POST", "secrets"),
    ("PATCH", "secrets"),
}


def operator_writes(delta: Counter[Key]) -> Counter[Key]:
    return Counter({k: v for k, v in delta.items() if k in OPERATOR_WRITES})


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
