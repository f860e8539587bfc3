"""The chart's log archive values: the config they render, the volume of a file:// archive,
and the RBAC they add (`pods/log` get; `get` on the one credentials Secret)."""

from __future__ import annotations

from unit.test_chart_templates import (
    FULLNAME,
    NAMESPACE,
    OPERATOR_RULES,
    Obj,
    bound_to_operator,
    container,
    only,
    operator_config,
    render,
    rules,
)

S3 = [
    "logArchive.url=s3://logs/ci",
    "logArchive.s3.endpoint=https://s3.example.com",
    "logArchive.s3.region=eu-west-1",
    "logArchive.s3.credentialsSecret=archive-creds",
    "logArchive.s3.pathStyle=true",
    "logArchive.maxBytes=1048576",
]


def _granted(objs: list[Obj]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for _, role in bound_to_operator(objs):
        for key, verbs in rules(role).items():
            granted.setdefault(key, set()).update(verbs)
    return granted


def test_no_archive_by_default_and_no_pods_log() -> None:
    objs = render()
    _, config = operator_config(objs)
    assert config.logArchive is None
    assert ("", "pods/log") not in _granted(objs)


def test_s3_archive_config_reaches_the_model_and_rbac_is_the_least() -> None:
    objs = render(sets=S3)
    _, config = operator_config(objs)
    archive = config.logArchive
    assert archive is not None and archive.url == "s3://logs/ci" and archive.maxBytes == 1048576
    assert (archive.s3.endpoint, archive.s3.region) == ("https://s3.example.com", "eu-west-1")
    assert (archive.s3.credentialsSecret, archive.s3.pathStyle) == ("archive-creds", True)
    granted = _granted(objs)
    assert granted[("", "pods/log")] == {"get"}
    assert {k: v for k, v in granted.items() if k in OPERATOR_RULES} == OPERATOR_RULES
    role = only(objs, "Role", f"{FULLNAME}-log-archive", NAMESPACE)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["archive-creds"],
         "verbs": ["get"]}
    ]  # fmt: skip
    # the credentials reach the operator through the API only: not in its pod spec
    assert "archive-creds" not in str(only(objs, "Deployment"))


def test_file_archive_on_an_empty_dir_or_a_claim() -> None:
    url = "logArchive.url=file:///var/lib/cijob/logs"
    for sets, volume in (
        ([url], {"name": "log-archive", "emptyDir": {"sizeLimit": "1Gi"}}),
        (
            [url, "logArchive.volume.existingClaim=ci-logs"],
            {"name": "log-archive", "persistentVolumeClaim": {"claimName": "ci-logs"}},
        ),
    ):
        objs = render(sets=sets)
        pod = only(objs, "Deployment")["spec"]["template"]["spec"]
        assert volume in pod["volumes"]
        mounts = {m["name"]: m for m in container(objs)["volumeMounts"]}
        assert mounts["log-archive"]["mountPath"] == "/var/lib/cijob/logs"
        assert not any(o["metadata"]["name"].endswith("-log-archive") for o in objs)
