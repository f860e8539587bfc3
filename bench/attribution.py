"""Which API requests are the operator's: counted by the API server per client identity.

`apiserver_request_total` has no user label, so counting the operator's writes by verb and
resource also counts whoever else makes the same requests (a kube-scheduler's or a real
kubelet's events, say). The API server does count requests by identity in one place: API
Priority and Fairness classifies every request into the first FlowSchema that matches its
user, verb and resource, and counts it in `apiserver_flowcontrol_dispatched_requests_total`
by FlowSchema. So the benchmark runs the operator as a ServiceAccount of its own and gives it
one FlowSchema per kind of request; each schema's counter is then that request's count, made
by the operator and nobody else. The schemas send the requests to the `exempt` priority level,
where the administrator's certificate the operator used before also lands: no request is
queued or limited by being counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]
Key = tuple[str, str]  # (verb as the request counter shows it, resource[/subresource])

NAMESPACE = "bench-operator"
ACCOUNT = "cijob-operator"
USER = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
PREFIX = "bench-operator-"
# Below every suggested FlowSchema that could match a ServiceAccount (kube-system's at 900,
# service-accounts at 9000); the mandatory `exempt` (1) and `probes` (2) match other clients.
PRECEDENCE = 100

# The writes the figures name one by one: the operator's pods, its CiJobs' status, its events,
# Secrets and Lease. Any other write lands in OTHER_WRITES, so none escapes the count.
RESOURCES = ("pods", "pods/status", "cijobs", "cijobs/status", "events", "secrets", "leases")
WRITE_VERBS = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE"}
READ_VERBS = {"get": "GET", "list": "LIST", "watch": "WATCH"}
OTHER_WRITES: Key = ("WRITE", "other")  # deletecollection, other resources, unknown verbs
NON_RESOURCE: Key = ("GET", "non-resource")  # /version, /api, /apis: no object written


def _slug(key: Key) -> str:
    verb, resource = key
    slug = f"{verb}-{resource}".lower().replace("/", "-").replace("*", "all")
    return PREFIX + slug


def _schema(key: Key, precedence: int, rule: Json) -> Json:
    subject = {
        "kind": "ServiceAccount",
        "serviceAccount": {"name": ACCOUNT, "namespace": NAMESPACE},
    }
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": _slug(key), "labels": {"bench.cijob.dev/counts": "operator"}},
        "spec": {
            "matchingPrecedence": precedence,
            "priorityLevelConfiguration": {"name": "exempt"},
            "rules": [{"subjects": [subject], **rule}],
        },
    }


def _resources(verbs: list[str], resources: list[str]) -> Json:
    return {
        "resourceRules": [
            {
                "verbs": verbs,
                "apiGroups": ["*"],
                "resources": resources,
                "namespaces": ["*"],
                "clusterScope": True,
            }
        ]
    }


def flow_schemas() -> dict[Key, Json]:
    """One FlowSchema per kind of the operator's requests; together they match all of them."""
    schemas: dict[Key, Json] = {}
    # Disjoint rules at one precedence, then the reads, then whatever is left: every request of
    # the operator's account matches exactly one schema, the first in this order that fits.
    for resource in RESOURCES:
        for verb, shown in WRITE_VERBS.items():
            schemas[(shown, resource)] = _schema(
                (shown, resource), PRECEDENCE, _resources([verb], [resource])
            )
    for verb, shown in READ_VERBS.items():
        schemas[(shown, "*")] = _schema((shown, "*"), PRECEDENCE + 1, _resources([verb], ["*"]))
    schemas[NON_RESOURCE] = _schema(
        NON_RESOURCE,
        PRECEDENCE + 1,
        {"nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]},
    )
    schemas[OTHER_WRITES] = _schema(OTHER_WRITES, PRECEDENCE + 2, _resources(["*"], ["*"]))
    return schemas


def is_write(key: Key) -> bool:
    return key != NON_RESOURCE and key[0] not in READ_VERBS.values()


_SAMPLE = re.compile(r"^(?P<name>\w+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"


def samples(text: str, metric: str) -> Iterator[tuple[dict[str, str], float]]:
    """The labelled samples of one metric in the Prometheus text format."""
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group("name") == metric:
            yield dict(_LABEL.findall(m.group("labels"))), float(m.group("value"))


def operator_requests(metrics: str) -> Counter[Key]:
    """The operator's requests so far, by kind, from the API server's /metrics text."""
    by_name = {_slug(key): key for key in flow_schemas()}
    counts: Counter[Key] = Counter()
    for labels, value in samples(metrics, DISPATCHED):
        key = by_name.get(labels.get("flow_schema", ""))
        if key is not None:
            counts[key] += int(value)
    return counts


def writes(counts: Counter[Key]) -> Counter[Key]:
    return Counter({k: v for k, v in counts.items() if is_write(k) and v > 0})


def reads(counts: Counter[Key]) -> Counter[Key]:
    return Counter({k: v for k, v in counts.items() if not is_write(k) and v > 0})


def per_job(counts: Counter[Key], n: int) -> float:
    return sum(counts.values()) / n
