"""`cijob run`, `cijob wait` and `cijob logs`: a job on the cluster, from the terminal."""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from cijob import api
from cijob.cli import follow
from cijob.cli import status as st
from cijob.cli.checkout import local_checkout
from cijob.cli.convert import converted
from cijob.cli.follow import Fail, Out, api_message, follow_to_end, get_job, stream_log
from cijob.cli.kubeopts import Kube, add_flags, connect
from cijob.cli.manifests import ManifestError, other_kinds, read_cijobs
from cijob.render import names
from cijob.render.pod import BUILD_CONTAINER

# How long --replace waits for the old CiJob (and its pods, by foreground deletion) to go.
REPLACE_WAIT_SECONDS = 60.0
# Room left in a 60-character name for generateName's 5 random characters.
GENERATE_PREFIX_LENGTH = 54
# What the API server sets: a manifest from `kubectl get -o yaml` is created afresh without it.
SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "namespace",
)
Json = dict[str, Any]


def create(kube: Kube, manifest: Json, replace: bool, out: Out) -> str:
    """Creates the CiJob; a taken name is replaced (`replace`) or gets a generated suffix."""
    body = copy.deepcopy(manifest)
    body.pop("status", None)
    for key in SERVER_FIELDS:
        body["metadata"].pop(key, None)
    name = body["metadata"]["name"]
    args = (api.GROUP, api.VERSION, kube.namespace, api.PLURAL)
    try:
        created: Json = kube.custom.create_namespaced_custom_object(*args, body)
        return str(created["metadata"]["name"])
    except ApiException as exc:
        if exc.status != 409:
            raise
    if replace:
        kube.custom.delete_namespaced_custom_object(
            *args, name, body={"propagationPolicy": "Foreground"}
        )
        deadline = time.monotonic() + REPLACE_WAIT_SECONDS
        while get_job(kube, name) is not None:
            if time.monotonic() > deadline:
                raise Fail(f"CiJob {name} was not deleted within {REPLACE_WAIT_SECONDS:.0f} s")
            time.sleep(follow.POLL_SECONDS)
        created = kube.custom.create_namespaced_custom_object(*args, body)
        out.note(f"replaced CiJob {name}")
        return str(created["metadata"]["name"])
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = name[:GENERATE_PREFIX_LENGTH].rstrip("-") + "-"
    created = kube.custom.create_namespaced_custom_object(*args, body)
    fresh = str(created["metadata"]["name"])
    out.note(f"CiJob {name} exists already: created {fresh} (--replace replaces it)")
    return fresh


def _manifest_for_run(args: argparse.Namespace) -> Json:
    if args.filename:
        if args.source:
            raise Fail("give either -f FILE or a GitLab CI file and a job, not both")
        docs = read_cijobs(args.filename)
        if len(docs) != 1:
            raise Fail(f"{args.filename}: holds {len(docs)} CiJobs; run takes one")
        others = other_kinds(args.filename) if args.filename != "-" else []
        if others:
            print(
                f"cijob: note: {args.filename} also holds {', '.join(others)}: run creates "
                "only the CiJob (kubectl apply -f creates the rest)",
                file=sys.stderr,
            )
        return docs[0]
    if not args.source or len(args.source) != 2:
        raise Fail("usage: cijob run -f job.yaml | cijob run .gitlab-ci.yml JOB")
    checkout = local_checkout(Path.cwd(), lambda line: print(f"cijob: {line}", file=sys.stderr))
    result = converted(args.source[0], [args.source[1]], args.strict, checkout)
    if result is None or not result.manifests:
        raise Fail(f"{args.source[0]}: job {args.source[1]!r} was not converted")
    if checkout is None:
        print(
            "cijob: note: not in a git checkout with a remote: nothing is cloned, the script "
            "starts in an empty /builds/<project>",
            file=sys.stderr,
        )
    return result.manifests[0]


def _run(args: argparse.Namespace) -> int:
    manifest = _manifest_for_run(args)
    kube = connect(args)
    if args.namespace is None and manifest["metadata"].get("namespace"):
        kube.namespace = manifest["metadata"]["namespace"]
    out = Out(args.output == "json")
    name = create(kube, manifest, args.replace, out)
    out.note(f"created CiJob {kube.namespace}/{name}")
    return follow_to_end(kube, name, args, logs=args.follow)


def _wait(args: argparse.Namespace) -> int:
    kube = connect(args)
    if get_job(kube, args.job) is None:
        raise Fail(f"CiJob {kube.namespace}/{args.job} not found")
    return follow_to_end(kube, args.job, args, logs=False)


def _until_build_starts(kube: Kube, name: str, out: Out) -> Json:
    """`logs -f` on a job whose build has not started: waits for it (or for the job's end)."""
    said = False
    while True:
        job = get_job(kube, name)
        if job is None:
            raise Fail(f"CiJob {kube.namespace}/{name} not found")
        status = job.get("status") or {}
        pod = follow.get_pod(kube, status["podName"]) if status.get("podName") else None
        if st.is_terminal(status) or st.build_started(pod):
            return job
        if not said:
            out.note(f"waiting for the build of CiJob {name} to start")
            said = True
        out.progress(st.progress(job, pod))
        time.sleep(follow.POLL_SECONDS)


def _logs(args: argparse.Namespace) -> int:
    kube = connect(args)
    out = Out(False)
    job = get_job(kube, args.job)
    if job is None:
        raise Fail(f"CiJob {kube.namespace}/{args.job} not found")
    if args.follow and args.attempt is None:
        job = _until_build_starts(kube, args.job, out)
    status = job.get("status") or {}
    attempt = args.attempt or status.get("attempt")
    if not attempt:
        raise Fail(f"CiJob {args.job} has no pod yet (phase {status.get('phase') or 'none'})")
    if attempt > (status.get("attempt") or 0):
        raise Fail(f"CiJob {args.job} has no attempt {attempt} (latest {status.get('attempt')})")
    pod = names.pod_name(args.job, attempt)
    if follow.get_pod(kube, pod) is None:
        raise Fail(
            f"pod {pod} no longer exists, and this version keeps no log archive: the log of "
            f"attempt {attempt} is gone"
        )
    return 0 if stream_log(kube, pod, args.container, args.follow, out) else 1


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = func(args)
            return result
        except (Fail, ManifestError, ConfigException) as exc:
            print(f"cijob: {exc}", file=sys.stderr)
            return 1
        except ApiException as exc:
            print(f"cijob: the API server said {exc.status}: {api_message(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"cijob: cannot reach the cluster: {exc}", file=sys.stderr)
            return 1

    return run


def add(sub: Any) -> None:
    run = sub.add_parser("run", help="create a CiJob and wait for it (with --follow, its log)")
    run.add_argument(
        "source",
        nargs="*",
        metavar="GITLAB_CI_FILE JOB",
        help="a .gitlab-ci.yml and one of its jobs (instead of -f)",
    )
    run.add_argument("-f", "--filename", help="a CiJob manifest (- for stdin)")
    run.add_argument("--follow", action="store_true", help="stream the build log, every attempt")
    run.add_argument("--replace", action="store_true", help="replace a CiJob of the same name")
    run.add_argument("--strict", action="store_true", help="as for convert")
    run.add_argument(
        "--cancel-on-interrupt", action="store_true", help="Ctrl-C cancels the job without asking"
    )
    for p, func in ((run, _run),):
        p.set_defaults(func=_guard(func))
    wait = sub.add_parser("wait", help="wait for a CiJob to end; exit with its exit code")
    wait.add_argument("job", help="the CiJob's name")
    wait.set_defaults(func=_guard(_wait))
    for p in (run, wait):
        p.add_argument("--timeout", help="give up waiting after this long (1h, 30m, 90s)")
        p.add_argument(
            "-o",
            "--output",
            choices=["text", "json"],
            default="text",
            help="json: one object with the outcome on stdout",
        )
        add_flags(p)
    logs = sub.add_parser("logs", help="print a CiJob's build log (live from its pod)")
    logs.add_argument("job", help="the CiJob's name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream while it runs")
    logs.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    logs.add_argument(
        "-c",
        "--container",
        default=BUILD_CONTAINER,
        help="container (default build; services by their names)",
    )
    add_flags(logs)
    logs.set_defaults(func=_guard(_logs))
