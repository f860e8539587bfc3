"""The pod of a CiJob attempt: the README's "The pod", row by row."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError

from cijob.config import OperatorConfig
from cijob.errors import InvalidSpec, PolicyViolation
from cijob.job import Job, parse_spec
from cijob.render import script
from cijob.render.pod import entrypoint_command, get_pod, images_of

Manifest = dict[str, Any]
DIGEST = "sha256:d1dbaf9665fe8b2175198e49438092fdbcf4d8934200942b94425301b17853c7"
SECRET_AUTH = base64.b64encode(b"my_username:my_password").decode()
DOCKER_AUTH_CONFIG = json.dumps({"auths": {"registry.example.com:5000": {"auth": SECRET_AUTH}}})


def make_job(
    spec: dict[str, Any], name: str = "rspec", namespace: str = "team-a", generation: int = 1
) -> Job:
    return Job(
        name=name, namespace=namespace, uid="uid-1", generation=generation, spec=parse_spec(spec)
    )


def config(**fields: Any) -> OperatorConfig:
    return OperatorConfig.model_validate(fields)


def render(
    spec: dict[str, Any],
    cfg: OperatorConfig | None = None,
    attempt: int = 1,
    pull_secret: str | None = None,
) -> Manifest:
    return get_pod(make_job(spec), attempt, cfg or OperatorConfig(), pull_secret)


def job_spec(**fields: Any) -> dict[str, Any]:
    return {"image": "ruby:2.6", "script": ["bundle exec rake spec"], **fields}


def build_of(pod: Manifest) -> Manifest:
    build: Manifest
    [build] = pod["spec"]["containers"]
    assert build["name"] == "build"
    return build


def sidecars(pod: Manifest) -> list[Manifest]:
    result: list[Manifest] = pod["spec"].get("initContainers", [])
    return result


def sidecar(pod: Manifest, name: str) -> Manifest:
    [found] = [c for c in sidecars(pod) if c["name"] == name]
    return found


def env_of(container: Manifest) -> dict[str, str]:
    names = [e["name"] for e in container.get("env", [])]
    assert len(names) == len(set(names)), f"duplicate env names in {container['name']}"
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def hostnames(pod: Manifest) -> list[str]:
    aliases = pod["spec"].get("hostAliases", [])
    assert all(a["ip"] == "127.0.0.1" for a in aliases)
    return [h for a in aliases for h in a["hostnames"]]


# -- identity --------------------------------------------------------------------------------


def test_name_namespace_labels_and_owner() -> None:
    pod = get_pod(make_job(job_spec(), generation=7), 2, OperatorConfig())
    meta = pod["metadata"]
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert meta["name"] == "rspec-2"
    assert meta["namespace"] == "team-a"
    assert meta["labels"]["cijob.dev/job"] == "rspec"
    assert meta["labels"]["cijob.dev/attempt"] == "2"
    [owner] = meta["ownerReferences"]
    assert owner["apiVersion"] == "cijob.dev/v1alpha1"
    assert owner["kind"] == "CiJob"
    assert owner["name"] == "rspec"
    assert owner["uid"] == "uid-1"
    assert owner["controller"] is True


def test_rendering_is_deterministic() -> None:
    spec = job_spec(services=["postgres:11.7", {"name": "redis", "alias": "cache"}])
    assert render(spec, attempt=3) == render(spec, attempt=3)
    assert render(spec, attempt=1)["metadata"]["name"] == "rspec-1"


def test_restart_policy_never() -> None:
    assert render(job_spec())["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(("timeout", "seconds"), [("1h30m", 5400), ("90s", 90), ("2h 30m", 9000)])
def test_active_deadline_from_the_timeout(timeout: str, seconds: int) -> None:
    assert render(job_spec(timeout=timeout))["spec"]["activeDeadlineSeconds"] == seconds


def test_active_deadline_from_the_configured_default() -> None:
    assert render(job_spec())["spec"]["activeDeadlineSeconds"] == 3600
    cfg = config(defaults={"timeout": "45m"})
    assert render(job_spec(), cfg)["spec"]["activeDeadlineSeconds"] == 2700
    # The job's own timeout wins over the default.
    assert render(job_spec(timeout="10m"), cfg)["spec"]["activeDeadlineSeconds"] == 600


def test_an_invalid_configured_timeout_is_refused_with_the_configuration() -> None:
    with pytest.raises(ValidationError, match=r"defaults\.timeout"):
        config(defaults={"timeout": "forever"})
    with pytest.raises(ValidationError, match="at least one second"):
        config(defaults={"timeout": "0s"})


def test_zero_timeout_is_invalid_spec() -> None:
    # Kubernetes refuses activeDeadlineSeconds < 1: the pod could never be created.
    with pytest.raises(InvalidSpec, match=r"^spec\.timeout: "):
        render(job_spec(timeout="0s"))


# -- working directory and CI variables ------------------------------------------------------


def test_working_dir_from_the_project() -> None:
    pod = render(job_spec(project="group/project"))
    build = build_of(pod)
    assert build["workingDir"] == "/builds/group/project"
    assert env_of(build)["CI_PROJECT_DIR"] == "/builds/group/project"


def test_working_dir_defaults_to_namespace_and_name() -> None:
    build = build_of(render(job_spec()))
    assert build["workingDir"] == "/builds/team-a/rspec"


def test_builds_is_an_empty_dir() -> None:
    pod = render(job_spec())
    [volume] = pod["spec"]["volumes"]
    assert volume == {"name": "builds", "emptyDir": {}}
    assert {"name": "builds", "mountPath": "/builds"} in build_of(pod)["volumeMounts"]


def test_ci_variables() -> None:
    env = env_of(build_of(render(job_spec(project="group/project"))))
    assert env["CI_PROJECT_DIR"] == "/builds/group/project"
    assert env["CI_BUILDS_DIR"] == "/builds"
    assert env["CI_JOB_NAME"] == "rspec"
    assert env["CI_JOB_IMAGE"] == "ruby:2.6"


def test_ci_job_image_of_the_map_form() -> None:
    env = env_of(build_of(render(job_spec(image={"name": "alpine:3", "entrypoint": [""]}))))
    assert env["CI_JOB_IMAGE"] == "alpine:3"


# -- variables -------------------------------------------------------------------------------


def test_variables_reach_the_build_and_every_service() -> None:
    pod = render(
        job_spec(
            variables={"RAILS_ENV": "test", "POSTGRES_DB": "app"},
            services=["postgres:11.7", {"name": "redis:latest", "alias": "cache"}],
        )
    )
    for container in [build_of(pod), *sidecars(pod)]:
        env = env_of(container)
        assert env["RAILS_ENV"] == "test", container["name"]
        assert env["POSTGRES_DB"] == "app", container["name"]
        assert env["CI_JOB_NAME"] == "rspec", container["name"]
    assert len(sidecars(pod)) == 2


def test_service_variables_only_in_their_service() -> None:
    pod = render(
        job_spec(
            variables={"SHARED": "job", "MODE": "job"},
            services=[
                {"name": "postgres:11.7", "alias": "db", "variables": {"POSTGRES_PASSWORD": "pw"}},
                {"name": "redis:latest", "alias": "cache", "variables": {"MODE": "svc"}},
            ],
        )
    )
    db, cache, build = env_of(sidecar(pod, "db")), env_of(sidecar(pod, "cache")), build_of(pod)
    assert db["POSTGRES_PASSWORD"] == "pw"
    assert "POSTGRES_PASSWORD" not in cache
    assert "POSTGRES_PASSWORD" not in env_of(build)
    # A service's variables are added to the job's for that container, winning over them.
    assert cache["MODE"] == "svc"
    assert db["MODE"] == "job"
    assert env_of(build)["MODE"] == "job"
    assert cache["SHARED"] == db["SHARED"] == "job"


def test_scripts_only_in_the_build_container() -> None:
    pod = render(job_spec(services=["postgres:11.7"]))
    assert script.SCRIPT_ENV in env_of(build_of(pod))
    for svc in sidecars(pod):
        assert script.SCRIPT_ENV not in env_of(svc)
        assert script.AFTER_SCRIPT_ENV not in env_of(svc)


def test_docker_auth_config_is_never_in_the_pod() -> None:
    pod = render(
        job_spec(
            variables={"DOCKER_AUTH_CONFIG": DOCKER_AUTH_CONFIG, "OTHER": "1"},
            services=["postgres:11.7", {"name": "redis", "alias": "cache"}],
        ),
        pull_secret="rspec-registry",
    )
    text = json.dumps(pod)
    assert SECRET_AUTH not in text
    assert "registry.example.com:5000" not in text
    for container in [build_of(pod), *sidecars(pod)]:
        assert "DOCKER_AUTH_CONFIG" not in [e["name"] for e in container["env"]]
        assert env_of(container)["OTHER"] == "1"
    assert {"name": "rspec-registry"} in pod["spec"]["imagePullSecrets"]


def test_docker_auth_config_in_service_variables_is_never_in_the_pod() -> None:
    pod = render(
        job_spec(
            services=[
                {
                    "name": "postgres:11.7",
                    "alias": "db",
                    "variables": {"DOCKER_AUTH_CONFIG": DOCKER_AUTH_CONFIG},
                }
            ]
        )
    )
    assert SECRET_AUTH not in json.dumps(pod)


def test_variables_from_become_env_from() -> None:
    pod = render(
        job_spec(
            services=["postgres:11.7"],
            variablesFrom=[
                {"secretRef": {"name": "registry-creds"}},
                {"configMapRef": {"name": "settings", "optional": True}, "prefix": "APP_"},
                {"secretRef": {"name": "tokens", "optional": False}, "prefix": "T_"},
            ],
        )
    )
    expected = [
        {"secretRef": {"name": "registry-creds"}},
        {"configMapRef": {"name": "settings", "optional": True}, "prefix": "APP_"},
        {"secretRef": {"name": "tokens", "optional": False}, "prefix": "T_"},
    ]
    assert build_of(pod)["envFrom"] == expected
    assert sidecars(pod)[0]["envFrom"] == expected


def test_no_env_from_without_variables_from() -> None:
    pod = render(job_spec(services=["postgres:11.7"]))
    assert "envFrom" not in build_of(pod)
    assert "envFrom" not in sidecars(pod)[0]


# -- the entrypoint table --------------------------------------------------------------------


def test_entrypoint_not_set() -> None:
    build = build_of(render(job_spec(image={"name": "ruby:2.6"})))
    assert "command" not in build  # the image's ENTRYPOINT runs
    assert build["args"] == script.shell_launcher()


def test_entrypoint_not_set_in_the_string_form() -> None:
    build = build_of(render(job_spec(image="ruby:2.6")))
    assert "command" not in build
    assert build["args"] == script.shell_launcher()


@pytest.mark.parametrize("entrypoint", [[""], []])
def test_empty_entrypoint(entrypoint: list[str]) -> None:
    build = build_of(render(job_spec(image={"name": "ruby:2.6", "entrypoint": entrypoint})))
    assert build["command"] == script.shell_launcher()
    assert "args" not in build


@pytest.mark.parametrize(
    "entrypoint", [["/bin/sh", "-c"], ["/bin/bash", "-c"], ["sh", "-c"], ["/usr/bin/bash", "-c"]]
)
def test_shell_with_dash_c_entrypoint(entrypoint: list[str]) -> None:
    build = build_of(render(job_spec(image={"name": "ruby:2.6", "entrypoint": entrypoint})))
    assert build["command"] == entrypoint
    # One string: the launcher's command line.
    assert build["args"] == [script.LAUNCHER]


@pytest.mark.parametrize(
    "entrypoint", [["/usr/bin/tini", "--"], ["/usr/bin/super-sql", "run"], ["dumb-init"]]
)
def test_other_entrypoint(entrypoint: list[str]) -> None:
    build = build_of(render(job_spec(image={"name": "ruby:2.6", "entrypoint": entrypoint})))
    assert build["command"] == entrypoint
    assert build["args"] == script.shell_launcher()


def test_entrypoint_command_table() -> None:
    launcher = script.shell_launcher()
    assert entrypoint_command(None) == (None, launcher)
    assert entrypoint_command([""]) == (launcher, None)
    assert entrypoint_command([]) == (launcher, None)
    assert entrypoint_command(["/bin/sh", "-c"]) == (["/bin/sh", "-c"], [script.LAUNCHER])
    assert entrypoint_command(["/bin/bash", "-c"]) == (["/bin/bash", "-c"], [script.LAUNCHER])
    assert entrypoint_command(["/usr/bin/tini", "--"]) == (["/usr/bin/tini", "--"], launcher)


def test_shell_launcher_starts_sh() -> None:
    assert script.shell_launcher() == ["sh", "-c", script.LAUNCHER]


def _as_the_kubelet_passes_it(value: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of an env value (third_party/forked/golang/expansion): `$$` is
    `$`, `$(NAME)` is NAME's value when defined earlier, anything else stays."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            name = value[i + 2 : value.index(")", i)]
            out.append(env.get(name, f"$({name})"))
            i = value.index(")", i) + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def test_scripts_travel_in_the_environment() -> None:
    spec = job_spec(beforeScript=["bundle install"], afterScript=["echo done"])
    env = env_of(build_of(render(spec, config(afterScriptTimeoutSeconds=42))))
    assert _as_the_kubelet_passes_it(env[script.SCRIPT_ENV], env) == script.build_script(
        ["bundle install"], ["bundle exec rake spec"]
    )
    assert _as_the_kubelet_passes_it(env[script.AFTER_SCRIPT_ENV], env) == script.after_script(
        ["echo done"]
    )
    assert env[script.AFTER_SCRIPT_TIMEOUT_ENV] == "42"


def test_dollar_signs_in_scripts_reach_the_shell_as_written() -> None:
    lines = ["echo $$ $(date) $(CI) ${CI} $$(x)", "echo '$(CI_PROJECT_DIR)'"]
    env = env_of(build_of(render(job_spec(script=lines, afterScript=lines))))
    seen = _as_the_kubelet_passes_it(env[script.SCRIPT_ENV], env)
    assert seen == script.build_script([], lines)
    assert _as_the_kubelet_passes_it(env[script.AFTER_SCRIPT_ENV], env) == script.after_script(
        lines
    )


def test_after_script_limit_is_five_minutes_by_default() -> None:
    env = env_of(build_of(render(job_spec(afterScript=["echo done"]))))
    assert env[script.AFTER_SCRIPT_TIMEOUT_ENV] == "300"


# -- services --------------------------------------------------------------------------------


def test_services_are_native_sidecars() -> None:
    pod = render(job_spec(services=["postgres:11.7", "redis:latest"]))
    assert [c["image"] for c in sidecars(pod)] == ["postgres:11.7", "redis:latest"]
    for svc in sidecars(pod):
        assert svc["restartPolicy"] == "Always"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["build"]


def test_service_names_from_alias_else_index() -> None:
    pod = render(
        job_spec(
            services=[
                "postgres:11.7",
                {"name": "redis:latest", "alias": "cache"},
                {"name": "mysql:latest", "alias": "db,mysql-1"},
                {"name": "memcached", "alias": "  mc   memcache "},
            ]
        )
    )
    assert [c["name"] for c in sidecars(pod)] == ["svc-0", "cache", "db", "mc"]


def test_duplicate_alias_falls_back_to_the_index() -> None:
    pod = render(
        job_spec(
            services=[
                {"name": "postgres:11.7", "alias": "db"},
                {"name": "postgres:12", "alias": "db"},
            ]
        )
    )
    assert [c["name"] for c in sidecars(pod)] == ["db", "svc-1"]


def test_alias_build_does_not_clash_with_the_build_container() -> None:
    pod = render(job_spec(services=[{"name": "docker:dind", "alias": "build"}]))
    assert [c["name"] for c in sidecars(pod)] == ["svc-0"]
    assert "build" in hostnames(pod)


def test_container_names_are_unique() -> None:
    pod = render(job_spec(services=[{"name": "postgres:11.7", "alias": "svc-1"}, "redis:latest"]))
    names = [c["name"] for c in [*pod["spec"]["containers"], *sidecars(pod)]]
    assert len(names) == len(set(names)), names


def test_host_aliases_hold_aliases_and_derived_names() -> None:
    pod = render(
        job_spec(
            services=[
                "postgres:11.7",
                {"name": "registry.example.com:5000/my/image:v1", "alias": "api, api-v1 web"},
                {"name": "tutum/wordpress", "alias": "wp,blog"},
                f"docker:dind@{DIGEST}",
            ]
        )
    )
    hosts = hostnames(pod)
    assert set(hosts) == {
        "postgres",
        "api",
        "api-v1",
        "web",
        "registry.example.com-my-image",
        "wp",
        "blog",
        "tutum-wordpress",
        "docker",
    }
    assert len(hosts) == len(set(hosts))
    assert not any("__" in h for h in hosts)


def test_no_host_aliases_without_services() -> None:
    pod = render(job_spec())
    assert "hostAliases" not in pod["spec"]
    assert "initContainers" not in pod["spec"]


def test_service_entrypoint_and_command() -> None:
    pod = render(
        job_spec(
            services=[
                {
                    "name": "mysql:latest",
                    "alias": "db",
                    "entrypoint": ["docker-entrypoint.sh"],
                    "command": ["mysqld", "--default-authentication-plugin=mysql_native_password"],
                },
                {"name": "redis", "alias": "cache", "command": ["redis-server", "--save", ""]},
                {"name": "memcached", "alias": "mc"},
            ]
        )
    )
    db = sidecar(pod, "db")
    assert db["command"] == ["docker-entrypoint.sh"]
    assert db["args"] == ["mysqld", "--default-authentication-plugin=mysql_native_password"]
    cache = sidecar(pod, "cache")
    assert "command" not in cache
    assert cache["args"] == ["redis-server", "--save", ""]
    mc = sidecar(pod, "mc")
    assert "command" not in mc and "args" not in mc


# -- pull policies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "k8s"),
    [
        ("always", "Always"),
        ("if-not-present", "IfNotPresent"),
        ("never", "Never"),
        ("Always", "Always"),
        ("IfNotPresent", "IfNotPresent"),
        ("Never", "Never"),
    ],
)
def test_pull_policy_mapping(policy: str, k8s: str) -> None:
    pod = render(
        job_spec(
            image={"name": "ruby:2.6", "pullPolicy": policy},
            services=[{"name": "postgres:11.7", "alias": "db", "pullPolicy": policy}],
        )
    )
    assert build_of(pod)["imagePullPolicy"] == k8s
    assert sidecar(pod, "db")["imagePullPolicy"] == k8s


def test_no_pull_policy_leaves_the_cluster_rule() -> None:
    pod = render(job_spec(services=["postgres:11.7"]))
    assert "imagePullPolicy" not in build_of(pod)
    assert "imagePullPolicy" not in sidecars(pod)[0]


def test_disallowed_pull_policy_of_the_image() -> None:
    cfg = config(allowedPullPolicies=["IfNotPresent", "Never"])
    with pytest.raises(PolicyViolation, match=r"^spec\.image\.pullPolicy: .*always") as info:
        render(job_spec(image={"name": "ruby:2.6", "pullPolicy": "always"}), cfg)
    assert info.value.reason == "PolicyViolation"


def test_disallowed_pull_policy_of_a_service() -> None:
    cfg = config(allowedPullPolicies=["Always"])
    spec = job_spec(services=[{"name": "postgres", "alias": "db", "pullPolicy": "never"}])
    with pytest.raises(PolicyViolation, match=r"^spec\.services\[0\]\.pullPolicy: "):
        render(spec, cfg)


def test_allowed_pull_policy_passes() -> None:
    cfg = config(allowedPullPolicies=["IfNotPresent", "Never"])
    pod = render(job_spec(image={"name": "ruby:2.6", "pullPolicy": "if-not-present"}), cfg)
    assert build_of(pod)["imagePullPolicy"] == "IfNotPresent"


def test_pull_policy_defaults_to_the_first_allowed() -> None:
    cfg = config(allowedPullPolicies=["IfNotPresent", "Never"])
    pod = render(job_spec(services=["postgres:11.7"]), cfg)
    assert build_of(pod)["imagePullPolicy"] == "IfNotPresent"
    assert sidecars(pod)[0]["imagePullPolicy"] == "IfNotPresent"


# -- digests ---------------------------------------------------------------------------------


def test_require_digest_refuses_an_unpinned_image() -> None:
    with pytest.raises(PolicyViolation, match=r"^spec\.image: .*ruby:2\.6"):
        render(job_spec(), config(requireDigest=True))


def test_require_digest_refuses_an_unpinned_service() -> None:
    spec = job_spec(image=f"ruby:2.6.8@{DIGEST}", services=["postgres:11.7"])
    with pytest.raises(PolicyViolation, match=r"^spec\.services\[0\]\.name: "):
        render(spec, config(requireDigest=True))


def test_require_digest_accepts_pinned_images() -> None:
    spec = job_spec(
        image={"name": f"ruby:2.6.8@{DIGEST}", "entrypoint": [""]},
        services=[f"postgres@{DIGEST}", {"name": f"redis:7@{DIGEST}", "alias": "cache"}],
    )
    pod = render(spec, config(requireDigest=True))
    assert build_of(pod)["image"] == f"ruby:2.6.8@{DIGEST}"
    assert [c["image"] for c in sidecars(pod)] == [f"postgres@{DIGEST}", f"redis:7@{DIGEST}"]


def test_require_digest_applies_to_the_default_image() -> None:
    with pytest.raises(PolicyViolation):
        render({"script": ["true"]}, config(defaults={"image": "ruby:2.6"}, requireDigest=True))


# -- invalid images --------------------------------------------------------------------------


def test_invalid_image_is_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match=r"^spec\.image: .*Ruby") as info:
        render(job_spec(image="Ruby:2.6"))
    assert info.value.reason == "InvalidSpec"


def test_invalid_service_image_is_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match=r"^spec\.services\[1\]\.name: "):
        render(job_spec(services=["postgres", f"redis@sha256:{'A' * 64}"]))


def test_invalid_service_index_counts_the_jobs_own_services() -> None:
    # defaults.services come first in the pod, but the message must point into the CiJob.
    cfg = config(defaults={"services": ["docker:dind"]})
    with pytest.raises(InvalidSpec, match=r"^spec\.services\[0\]\.name: "):
        render(job_spec(services=["Bad/Image"]), cfg)


# -- operator defaults -----------------------------------------------------------------------


def test_default_image_when_the_job_names_none() -> None:
    pod = render({"script": ["true"]}, config(defaults={"image": "ruby:2.6"}))
    build = build_of(pod)
    assert build["image"] == "ruby:2.6"
    assert env_of(build)["CI_JOB_IMAGE"] == "ruby:2.6"
    assert "command" not in build


def test_the_jobs_image_wins_over_the_default() -> None:
    pod = render(job_spec(image="alpine:3"), config(defaults={"image": "ruby:2.6"}))
    assert build_of(pod)["image"] == "alpine:3"


def test_no_image_at_all_is_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match=r"^spec\.image: "):
        render({"script": ["true"]})


def test_default_services_are_added_to_every_job_first() -> None:
    cfg = config(
        defaults={"services": ["mysql:latest", {"name": "postgres:latest", "alias": "pg"}]}
    )
    pod = render(job_spec(services=[{"name": "redis", "alias": "cache"}]), cfg)
    assert [(c["name"], c["image"]) for c in sidecars(pod)] == [
        ("svc-0", "mysql:latest"),
        ("pg", "postgres:latest"),
        ("cache", "redis"),
    ]
    assert {"mysql", "pg", "postgres", "cache", "redis"} <= set(hostnames(pod))
    bare = render(job_spec(), cfg)
    assert [c["image"] for c in sidecars(bare)] == ["mysql:latest", "postgres:latest"]


# -- pod-level fields ------------------------------------------------------------------------


def test_resources_go_to_the_build_container() -> None:
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    pod = render(job_spec(resources=resources, services=["postgres:11.7"]))
    assert build_of(pod)["resources"] == resources
    assert "resources" not in sidecars(pod)[0]


def test_node_selector_tolerations_and_service_account() -> None:
    tolerations = [
        {"key": "ci", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
    ]
    pod = render(
        job_spec(
            nodeSelector={"kubernetes.io/os": "linux"},
            tolerations=tolerations,
            serviceAccountName="ci",
        )
    )
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"] == tolerations
    assert pod["spec"]["serviceAccountName"] == "ci"


def test_pod_level_fields_absent_when_unset() -> None:
    spec = render(job_spec())["spec"]
    for key in ["nodeSelector", "tolerations", "serviceAccountName", "imagePullSecrets"]:
        assert key not in spec


def test_image_pull_secrets_are_merged_with_the_generated_one() -> None:
    pod = render(
        job_spec(imagePullSecrets=[{"name": "existing"}, {"name": "other"}]),
        pull_secret="rspec-registry",
    )
    assert pod["spec"]["imagePullSecrets"] == [
        {"name": "existing"},
        {"name": "other"},
        {"name": "rspec-registry"},
    ]


def test_generated_pull_secret_alone() -> None:
    pod = render(job_spec(), pull_secret="rspec-registry")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "rspec-registry"}]


def test_generated_pull_secret_not_listed_twice() -> None:
    pod = render(job_spec(imagePullSecrets=[{"name": "same"}]), pull_secret="same")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "same"}]


def test_job_pull_secrets_without_a_generated_one() -> None:
    pod = render(job_spec(imagePullSecrets=[{"name": "existing"}]))
    assert pod["spec"]["imagePullSecrets"] == [{"name": "existing"}]


# -- the seed's examples ---------------------------------------------------------------------


def test_seed_ruby_with_postgres() -> None:
    pod = render(
        {"image": "ruby:2.6", "services": ["postgres:11.7"], "script": ["bundle exec rake spec"]}
    )
    build = build_of(pod)
    assert build["image"] == "ruby:2.6"
    assert "bundle exec rake spec" in env_of(build)[script.SCRIPT_ENV]
    [pg] = sidecars(pod)
    assert (pg["name"], pg["image"], pg["restartPolicy"]) == ("svc-0", "postgres:11.7", "Always")
    assert hostnames(pod) == ["postgres"]


def test_seed_super_sql_with_empty_entrypoint() -> None:
    pod = render(
        {
            "image": {"name": "super/sql:experimental", "entrypoint": [""]},
            "script": ["super-sql --version"],
        }
    )
    build = build_of(pod)
    assert build["image"] == "super/sql:experimental"
    assert build["command"] == script.shell_launcher()
    assert "args" not in build


def test_seed_super_sql_with_shell_entrypoint() -> None:
    pod = render(
        {
            "image": {"name": "super/sql:experimental", "entrypoint": ["/bin/sh", "-c"]},
            "script": ["super-sql --version"],
        }
    )
    build = build_of(pod)
    assert build["command"] == ["/bin/sh", "-c"]
    assert build["args"] == [script.LAUNCHER]


def test_seed_service_map_with_alias() -> None:
    pod = render(
        job_spec(
            services=[
                {"name": "mysql:latest", "alias": "mysql-1"},
                {"name": "postgres:latest", "alias": "db, postgres-db"},
            ]
        )
    )
    assert [c["name"] for c in sidecars(pod)] == ["mysql-1", "db"]
    assert set(hostnames(pod)) == {"mysql-1", "mysql", "db", "postgres-db", "postgres"}


def test_seed_private_registry_image() -> None:
    pod = render(job_spec(image="registry.example.com:5000/namespace/image:tag"))
    build = build_of(pod)
    assert build["image"] == "registry.example.com:5000/namespace/image:tag"
    assert env_of(build)["CI_JOB_IMAGE"] == "registry.example.com:5000/namespace/image:tag"


def test_seed_image_checksum() -> None:
    image = f"ruby:2.6.8@{DIGEST}"
    pod = render(job_spec(image=image))
    assert build_of(pod)["image"] == image


def test_images_of_lists_build_then_services() -> None:
    job = make_job(job_spec(services=["postgres:11.7", {"name": "redis", "alias": "cache"}]))
    cfg = config(defaults={"services": ["docker:dind"]})
    assert images_of(job, cfg) == [
        ("build", "ruby:2.6"),
        ("svc-0", "docker:dind"),
        ("svc-1", "postgres:11.7"),
        ("cache", "redis"),
    ]
