"""spec.source end to end on the REAL node: the clone container (the `helper` image, git's CLI)
fetches from a git server pod on the node (git http-backend behind lighttpd with basic auth,
tests/testground/gitserver.py), from repositories made here: branches, tags, a submodule, a
private repository. The jobs start together, so the file costs about one job's time."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from integration.conftest import OperatorFactory
from integration.support import CiJobs
from integration.test_realnode import PLACEMENT, build_log, explain, finished, namespace, node
from testground import gitserver, realnode

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]
__all__ = ["namespace", "node"]  # the real node's fixtures, shared with test_realnode

TOKEN = "glpat-" + "s3cr3t" * 4


@pytest.fixture(scope="module")
def git(node: realnode.NodeState, kubeconfig: Path) -> Iterator[gitserver.GitServer]:
    layout = realnode.NodeLayout(realnode.cluster.Layout(kubeconfig.resolve().parent))
    try:
        yield gitserver.ensure(layout, node)
    except gitserver.GitServerError as e:
        pytest.fail(f"the git server did not start: {e}", pytrace=False)


@pytest.fixture(scope="module")
def repos(git: gitserver.GitServer) -> dict[str, gitserver.Repo]:
    """app (main, a branch `feature`, a tag v1 on an older commit, 3 commits), its submodule
    lib with a submodule of its own (deep), and a private repository."""
    deep = git.make_repo("deep", {"deep.txt": "deep inside\n"})
    lib = git.make_repo("lib", {"lib.txt": "the library\n"})
    lib.run("-c", "protocol.file.allow=always", "submodule", "add", "-q", deep.url, "deep")
    lib.commit({}, "add deep")
    app = git.make_repo("app", {"test.sh": '#!/bin/sh\necho "tests of $1 pass"\n'})
    app.run("tag", "v1")
    app.commit({"NEWS": "two\n"}, "second")
    app.run("checkout", "-q", "-b", "feature")
    app.commit({"FEATURE": "yes\n"}, "feature work")
    app.run("checkout", "-q", "main")
    app.commit({"NEWS": "three\n"}, "third")
    app.push()
    with_sub = git.make_repo("with-sub", {"README": "has a submodule\n"})
    with_sub.run("-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.url, "lib")
    with_sub.commit({}, "add lib")
    secret = git.make_repo("secret", {"secret.txt": "only for the token\n"}, private=True)
    return {"app": app, "with-sub": with_sub, "secret": secret}


def job(node: realnode.NodeState, script: list[str], **git: Any) -> dict[str, Any]:
    return {"image": node.image("helper"), "script": script, "source": {"git": git}, **PLACEMENT}


def _secret(cijobs: CiJobs, namespace: str, name: str, password: str) -> None:
    data = {"username": gitserver.USER, "password": password}
    cijobs.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type="kubernetes.io/basic-auth",
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        ),
    )


# Eleven jobs run together (first pulls of the helper image included); on a busy machine they
# need more than the suite's default 300 s, which would cut the operator's teardown short.
@pytest.mark.timeout(600)
def test_jobs_run_on_the_checked_out_commit(
    node: realnode.NodeState,
    git: gitserver.GitServer,
    repos: dict[str, gitserver.Repo],
    start_operator: OperatorFactory,
    cijobs: CiJobs,
    namespace: str,
) -> None:
    app, with_sub, private = repos["app"], repos["with-sub"], repos["secret"]
    operator = start_operator(
        {"helperImage": node.image("helper")}, env={"DOCKER_AUTH_CONFIG": node.docker_auth_config()}
    )
    _secret(cijobs, namespace, "git-token", git.password)
    _secret(cijobs, namespace, "wrong-token", TOKEN)
    show = (
        'echo "sha=$CI_COMMIT_SHA ref=$CI_COMMIT_REF_NAME '
        'branch=${CI_COMMIT_BRANCH:-} tag=${CI_COMMIT_TAG:-}"'
    )
    v1 = app.rev_parse("v1")
    jobs = {
        "default": job(node, ["./test.sh default", show, "pwd"], url=app.url),
        "branch": job(node, [show, "test -f FEATURE"], url=app.url, ref="feature"),
        "tag": job(node, [show, "test ! -f NEWS"], url=app.url, ref="v1"),
        "commit": job(node, [show], url=app.url, commit=v1),
        "absent": job(node, [show], url=app.url, commit="0" * 40),
        "unknown-ref": job(node, [show], url=app.url, ref="nope"),
        "shallow": job(node, ["git rev-list --count HEAD"], url=app.url, depth=1),
        "full": job(node, ["git rev-list --count HEAD"], url=app.url, depth=0),
        "submodules": job(
            node, ["cat lib/lib.txt lib/deep/deep.txt"], url=with_sub.url, submodules="recursive"
        ),
        "private": job(node, ["cat secret.txt"], url=private.url, secretRef={"name": "git-token"}),
        "wrong-token": job(
            node, ["cat secret.txt"], url=private.url, secretRef={"name": "wrong-token"}
        ),
    }
    for name, spec in jobs.items():
        cijobs.create(namespace, name, spec)
    status = {name: finished(cijobs, namespace, name) for name in jobs}

    def ok(name: str) -> str:
        assert status[name]["phase"] == "Succeeded", (
            status[name],
            explain(cijobs, namespace, name),
        )
        return build_log(cijobs, namespace, status[name]["podName"])

    head = app.rev_parse("main")
    log = ok("default")
    assert "tests of default pass" in log
    assert f"sha={head} ref=main branch=main tag=\n" in log
    assert "/builds/git/app\n" in log  # /builds/<project>, the repository's path
    assert status["default"]["commit"] == head and status["default"]["shortCommit"] == head[:8]

    feature = app.rev_parse("feature")
    assert f"sha={feature} ref=feature branch=feature tag=\n" in ok("branch")
    assert status["branch"]["commit"] == feature
    assert f"sha={v1} ref=v1 branch= tag=v1\n" in ok("tag")
    assert f"sha={v1} ref=main" in ok("commit") and status["commit"]["commit"] == v1

    for name, words in (("absent", "is not on the remote"), ("unknown-ref", "unknown ref nope")):
        s = status[name]
        assert (s["phase"], s["reason"]) == ("Failed", "SourceFetchFailed"), s
        assert words in s["message"], s

    assert "$ git rev-list --count HEAD\n1\n" in ok("shallow")
    assert "$ git rev-list --count HEAD\n3\n" in ok("full")
    assert "the library\ndeep inside\n" in ok("submodules")
    assert "only for the token" in ok("private")

    wrong = status["wrong-token"]
    assert (wrong["phase"], wrong["reason"]) == ("Failed", "SourceFetchFailed"), wrong
    _nowhere(cijobs, namespace, "wrong-token", wrong, TOKEN)
    _nowhere(cijobs, namespace, "private", status["private"], git.password)
    assert TOKEN not in operator.log() and git.password not in operator.log()


def _nowhere(cijobs: CiJobs, namespace: str, name: str, status: dict[str, Any], token: str) -> None:
    """The token is in none of the status, events, pod spec or the clone's output."""
    pod = cijobs.pod(namespace, status["podName"])
    assert pod is not None
    clone_log = cijobs.core.read_namespaced_pod_log(status["podName"], namespace, container="clone")
    events = cijobs.events(namespace, name) + cijobs.events(namespace, status["podName"])
    for where, text in (
        ("status", json.dumps(status)),
        ("events", json.dumps(events, default=str)),
        ("pod", json.dumps(pod, default=str)),
        ("clone log", clone_log),
    ):
        assert token not in text, where
