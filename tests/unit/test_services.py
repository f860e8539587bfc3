"""Service startup probes, their ports, readiness and failures (docs/services.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cijob.config import OperatorConfig
from cijob.errors import InvalidSpec
from cijob.job import Job, job_from_body
from cijob.lifecycle.observe import Observation
from cijob.lifecycle.status import from_observation
from cijob.render.pod import get_pod
from cijob.services import probes, registry, watch
from cijob.services.lookup import unprobed_images

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec: Any) -> Job:
    meta = {"name": "rspec", "namespace": "team-a", "uid": "uid-1"}
    return job_from_body({"metadata": meta, "spec": {"image": "ruby:2.6", "script": ["x"], **spec}})


def sidecars(pod: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = pod["spec"]["initContainers"]
    return out


# --- the probe in the pod ----------------------------------------------------------------


def test_probe_from_the_image_ports_read_beforehand() -> None:
    pod = get_pod(
        job(services=["postgres:11.7", "redis:7"]),
        1,
        OperatorConfig(servicesWaitTimeoutSeconds=30),
        service_ports={"postgres:11.7": [5432]},
    )
    pg, redis = sidecars(pod)
    assert pg["startupProbe"] == {
        "tcpSocket": {"port": 5432},
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 30,
    }
    assert "startupProbe" not in redis  # its ports are not known: no probe


def test_healthcheck_tcp_port_wins_and_needs_no_registry() -> None:
    spec = {
        "services": [
            {"name": "docker:dind", "variables": {"HEALTHCHECK_TCP_PORT": "2376"}},
            "postgres:11.7",
        ],
    }
    pod = get_pod(job(**spec), 1, OperatorConfig(), service_ports={"docker:dind": [2375, 2376]})
    assert sidecars(pod)[0]["startupProbe"]["tcpSocket"] == {"port": 2376}
    assert unprobed_images(job(**spec), OperatorConfig()) == ["postgres:11.7"]
    # a job-level HEALTHCHECK_TCP_PORT applies to every service, as GitLab passes job variables
    everyone = job(services=["postgres:11.7"], variables={"HEALTHCHECK_TCP_PORT": "5432"})
    assert unprobed_images(everyone, OperatorConfig()) == []


def test_the_lowest_exposed_port_is_probed() -> None:
    assert probes.probe_port(None, [33060, 3306]) == 3306
    assert probes.probe_port(None, []) is None
    assert probes.probe_port(8080, [3306]) == 8080


@pytest.mark.parametrize("value", ["http", "0", "65536", "-1"])
def test_a_bad_healthcheck_port_names_the_field(value: str) -> None:
    spec = {"services": [{"name": "pg", "variables": {"HEALTHCHECK_TCP_PORT": value}}]}
    with pytest.raises(InvalidSpec, match=r"spec.services\[0\].variables.HEALTHCHECK_TCP_PORT"):
        get_pod(job(**spec), 1, OperatorConfig())


def test_exposed_tcp_ports_of_an_image_config() -> None:
    config = {"config": {"ExposedPorts": {"5432/tcp": {}, "53/udp": {}, "8080": {}}}}
    assert probes.exposed_tcp_ports(config) == [5432, 8080]
    assert probes.exposed_tcp_ports({"config": {}}) == []


# --- reading the registry (the pure parts) ------------------------------------------------


def test_registry_endpoints_and_challenges() -> None:
    assert registry.base_url("docker.io") == "https://registry-1.docker.io/v2"
    assert registry.base_url("127.0.0.1:5555") == "http://127.0.0.1:5555/v2"
    assert registry.base_url("localhost:5000") == "http://localhost:5000/v2"
    assert registry.base_url("[::1]:5000") == "http://[::1]:5000/v2"
    assert registry.base_url("registry.example.com") == "https://registry.example.com/v2"
    c = registry.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
    )
    assert c is not None and c.scheme == "bearer"
    assert registry.token_url(c, "library/postgres") == (
        "https://auth.docker.io/token?scope=repository%3Alibrary%2Fpostgres%3Apull"
        "&service=registry.docker.io"
    )
    basic = registry.parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"


def test_the_nodes_platform_is_picked_from_an_index() -> None:
    index = {
        "manifests": [
            {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }
    assert registry.pick_manifest(index) == "sha256:amd"
    assert registry.pick_manifest({"manifests": []}) is None


# --- what the sidecars' statuses say ------------------------------------------------------


def pod_with(
    sidecar_status: dict[str, Any], build_state: dict[str, Any] | None = None
) -> dict[str, Any]:
    probe = probes.startup_probe(5432, 30)
    return {
        "metadata": {"name": "rspec-1"},
        "spec": {
            "initContainers": [
                {
                    "name": "db",
                    "image": "postgres:11.7",
                    "restartPolicy": "Always",
                    "startupProbe": probe,
                }
            ],
            "containers": [{"name": "build", "image": "ruby"}],
        },
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [{"name": "db", **sidecar_status}],
            "containerStatuses": [
                {
                    "name": "build",
                    "state": build_state or {"waiting": {"reason": "PodInitializing"}},
                }
            ],
        },
    }


def test_a_service_not_ready_in_time_ends_the_attempt() -> None:
    waiting = pod_with({"started": False, "state": {"running": {"startedAt": stamp(10)}}})
    message, recheck = watch.not_ready(waiting, 30, NOW)
    assert message is None and recheck == 20  # the operator looks again when it is due
    late = pod_with({"started": False, "state": {"running": {"startedAt": stamp(31)}}})
    message, _ = watch.not_ready(late, 30, NOW)
    assert message == (
        "service postgres:11.7 (container db) did not accept connections on port 5432 within 30 s"
    )
    obs = watch.observe_services(late, Observation("Pending"), 30, NOW)
    assert (obs.phase, obs.reason) == ("Failed", "ServiceNotReady")


def test_the_wait_counts_from_the_first_run_the_kubelet_still_reports() -> None:
    # restarted once by the kubelet (its startup probe gave up): the first run's start
    restarted = pod_with(
        {
            "started": False,
            "restartCount": 1,
            "state": {"running": {"startedAt": stamp(1)}},
            "lastState": {"terminated": {"exitCode": 137, "startedAt": stamp(31)}},
        }
    )
    assert watch.not_ready(restarted, 30, NOW)[0] is not None


def test_a_ready_service_a_pulling_one_or_a_started_build_is_no_wait() -> None:
    ready = pod_with({"started": True, "state": {"running": {"startedAt": stamp(100)}}})
    pulling = pod_with({"started": False, "state": {"waiting": {"reason": "ContainerCreating"}}})
    began = pod_with(
        {"started": False, "state": {"running": {"startedAt": stamp(100)}}},
        {"running": {"startedAt": stamp(50)}},
    )
    for pod in (ready, pulling, began):
        assert watch.not_ready(pod, 30, NOW) == (None, None)


def test_failures_recorded_and_an_event_per_restart_count() -> None:
    oom = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": stamp(2)}}
    pod = pod_with(
        {"restartCount": 2, "started": True, "state": {"running": {}}, "lastState": oom},
        {"running": {"startedAt": stamp(60)}},
    )
    records = watch.failures(pod)
    assert records == [
        {
            "container": "db",
            "image": "postgres:11.7",
            "restartCount": 2,
            "lastTerminationReason": "OOMKilled",
            "lastExitCode": 137,
            "lastFinishedAt": stamp(2),
        }
    ]
    [(kind, reason, message)] = watch.failure_events(None, records)
    assert (kind, reason) == ("Warning", "ServiceFailed")
    assert "restarted 2 times; last ended: OOMKilled, exit code 137" in message
    assert watch.failure_events(records, records) == []  # no transition, no Event


def test_sidecars_stopped_after_the_build_are_no_failure() -> None:
    done = pod_with(
        {"restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"terminated": {"exitCode": 0}},
    )
    assert watch.failures(done) is None
    # a crash while the build runs is one, before the kubelet restarts it
    crashed = pod_with(
        {"restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}},
        {"running": {}},
    )
    [record] = watch.failures(crashed) or []
    assert record["lastTerminationReason"] == "Error"


def test_no_services_failing_means_no_status_field_and_no_write() -> None:
    old = from_observation({}, Observation("Running"), 1, NOW)
    assert old["services"] is None
    pod = pod_with({"started": True, "state": {"running": {}}}, {"running": {}})
    obs = watch.observe_services(pod, Observation("Running"), 30, NOW)
    new = from_observation(old, obs, 1, NOW)
    assert new == old


def test_a_termination_the_final_pod_status_forgot_is_kept() -> None:
    seen = [{"container": "db", "image": "pg", "restartCount": 1}
            | {"lastTerminationReason": "OOMKilled", "lastExitCode": 137}]  # fmt: skip
    final = [{"container": "db", "image": "pg", "restartCount": 1}]
    assert watch.carried(seen, final) == seen
    assert watch.carried(None, final) == final
    assert watch.carried(seen, None) is None
