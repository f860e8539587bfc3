"""The benchmark's attribution of API requests to the operator: its FlowSchemas, the counters
read back from /metrics, and the writes-per-job arithmetic."""

from __future__ import annotations

import re
from collections import Counter

from bench import attribution, ground, probes

DISPATCHED = attribution.DISPATCHED


def sample(schema: str, value: float, level: str = "exempt") -> str:
    return f'{DISPATCHED}{{flow_schema="{schema}",priority_level="{level}"}} {value}'


def name(key: attribution.Key) -> str:
    schema = attribution.flow_schemas()[key]
    value: str = schema["metadata"]["name"]
    return value


# What a test ground with a real node shows: the scheduler's FailedScheduling events and the
# kubelet's status patches count in apiserver_request_total, under other FlowSchemas.
FOREIGN = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        'apiserver_request_total{code="201",component="apiserver",group="",resource="events",'
        'scope="resource",subresource="",verb="POST",version="v1"} 3056',
        'apiserver_request_total{code="201",component="apiserver",group="",resource="pods",'
        'scope="resource",subresource="",verb="POST",version="v1"} 200',
        'apiserver_request_total{code="200",component="apiserver",group="",resource="pods",'
        'scope="resource",subresource="status",verb="PATCH",version="v1"} 600',
        sample("kube-scheduler", 3056, "workload-high"),
        sample("system-nodes", 600, "system"),
        sample("exempt", 200),
    ]
)


def test_every_schema_counts_only_the_operators_account_unlimited() -> None:
    for schema in attribution.flow_schemas().values():
        spec = schema["spec"]
        assert spec["priorityLevelConfiguration"] == {"name": "exempt"}
        (rule,) = spec["rules"]
        assert rule["subjects"] == [
            {
                "kind": "ServiceAccount",
                "serviceAccount": {"name": attribution.ACCOUNT, "namespace": attribution.NAMESPACE},
            }
        ]
        assert schema["metadata"]["name"].startswith(attribution.PREFIX)


def test_schema_names_are_distinct_so_each_counter_is_one_kind() -> None:
    schemas = attribution.flow_schemas()
    names = [s["metadata"]["name"] for s in schemas.values()]
    assert len(set(names)) == len(names) == len(schemas)
    assert name(("PATCH", "cijobs/status")) == "bench-operator-patch-cijobs-status"
    for n in names:  # what the API server takes as an object's name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) and len(n) <= 253, n


def test_the_named_writes_come_before_the_reads_and_the_catch_all() -> None:
    schemas = attribution.flow_schemas()

    def precedence(key: attribution.Key) -> int:
        value: int = schemas[key]["spec"]["matchingPrecedence"]
        return value

    other = precedence(attribution.OTHER_WRITES)
    for key in schemas:
        if key != attribution.OTHER_WRITES:
            assert precedence(key) < other  # the catch-all matches only what nothing else did
    assert precedence(("POST", "pods")) < precedence(("GET", "*"))
    catch_all = schemas[attribution.OTHER_WRITES]["spec"]["rules"][0]["resourceRules"][0]
    assert catch_all["verbs"] == ["*"] and catch_all["resources"] == ["*"]
    assert catch_all["clusterScope"] is True and catch_all["namespaces"] == ["*"]


def test_same_precedence_schemas_are_disjoint() -> None:
    seen: set[tuple[int, str, str]] = set()
    for schema in attribution.flow_schemas().values():
        spec = schema["spec"]
        for rule in spec["rules"][0].get("resourceRules", []):
            for verb in rule["verbs"]:
                for resource in rule["resources"]:
                    entry = (spec["matchingPrecedence"], verb, resource)
                    assert entry not in seen
                    seen.add(entry)


def test_foreign_writers_are_not_the_operators() -> None:
    # The bug: 3056 FailedScheduling events counted as a fresh operator's writes.
    counts = attribution.operator_requests(FOREIGN)
    assert counts == Counter()
    assert attribution.writes(counts) == Counter()
    assert probes.request_counts(FOREIGN)[("POST", "events")] == 3056  # still seen as all's


def test_the_operators_counters_are_read_by_schema() -> None:
    text = "\n".join(
        [
            FOREIGN,
            sample(name(("POST", "pods")), 200),
            sample(name(("PATCH", "cijobs/status")), 478),
            sample(name(("WATCH", "*")), 3),
            sample(name(("LIST", "*")), 2),
            sample(name(attribution.NON_RESOURCE), 4),
            sample(name(attribution.OTHER_WRITES), 1),
            sample("bench-operator-unknown", 99),  # not one of ours: not counted
        ]
    )
    counts = attribution.operator_requests(text)
    assert attribution.writes(counts) == Counter(
        {("POST", "pods"): 200, ("PATCH", "cijobs/status"): 478, attribution.OTHER_WRITES: 1}
    )
    assert attribution.reads(counts) == Counter(
        {("WATCH", "*"): 3, ("LIST", "*"): 2, attribution.NON_RESOURCE: 4}
    )


def test_writes_per_job_are_the_growth_of_the_operators_writes_over_the_run() -> None:
    before = probes.Requests(
        all=Counter({("POST", "events"): 3000}),
        operator=Counter({("POST", "pods"): 10, ("GET", "*"): 5}),
    )
    after = probes.Requests(
        all=Counter({("POST", "events"): 6056, ("POST", "pods"): 210}),
        operator=Counter({("POST", "pods"): 210, ("PATCH", "cijobs/status"): 478, ("GET", "*"): 9}),
    )
    delta = after.since(before)
    writes = attribution.writes(delta.operator)
    assert writes == Counter({("POST", "pods"): 200, ("PATCH", "cijobs/status"): 478})
    assert attribution.per_job(writes, 200) == 3.39
    assert delta.all[("POST", "events")] == 3056  # the scheduler's: in all, not in the operator's
    assert attribution.per_job(attribution.writes(before.since(before).operator), 1) == 0


def test_the_operators_kubeconfig_holds_only_its_token() -> None:
    admin = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "admin"}}],
        "current-context": "c",
    }
    config = ground.token_kubeconfig(admin, "t0k3n")
    assert config["users"] == [{"name": attribution.USER, "user": {"token": "t0k3n"}}]
    assert config["contexts"][0]["context"] == {"cluster": "c", "user": attribution.USER}
    assert config["clusters"] == admin["clusters"]
    assert admin["users"][0]["name"] == "admin"  # the admin's own config is left as it was
