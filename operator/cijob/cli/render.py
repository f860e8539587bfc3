"""`cijob render -f job.yaml [--config FILE]`: the Pod (and pull Secret) the operator would
create for attempt 1, computed without a cluster."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from cijob.cli.manifests import Manifest, ManifestError, read_cijobs
from cijob.config import load_config
from cijob.credentials import authconfig, matching, secret
from cijob.errors import JobError
from cijob.job import Job, parse_spec
from cijob.render.pod import DOCKER_AUTH_CONFIG, get_pod, images_of

UID_PLACEHOLDER = "<uid: set by the API server>"


def add(sub: Any) -> None:
    p = sub.add_parser("render", help="print the pod the operator would create, without a cluster")
    p.add_argument("-f", "--filename", required=True, help="CiJob manifest (- for stdin)")
    p.add_argument("--config", help="the operator's configuration file (defaults, policies)")
    p.add_argument(
        "-n", "--namespace", default=None, help="namespace (default: the manifest's, else default)"
    )
    p.add_argument("--attempt", type=int, default=1, help="attempt number (default 1)")
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    p.set_defaults(func=run)


def pull_secret_plan(job: Job, images: list[str]) -> tuple[str | None, list[str]]:
    """(the pull Secret's name if the job's own DOCKER_AUTH_CONFIG gives one, notes on what
    only the operator, with the cluster, can know)."""
    notes: list[str] = []
    for i, source in enumerate(job.spec.variablesFrom or []):
        ref = source.secretRef or source.configMapRef or source.secretKeyRef
        if ref is not None:
            notes.append(
                f"spec.variablesFrom[{i}]: {ref.name!r} is read from the cluster by the "
                "operator (it may hold DOCKER_AUTH_CONFIG)"
            )
    text = (job.spec.variables or {}).get(DOCKER_AUTH_CONFIG)
    if not text or not text.strip():
        notes.append(
            "the operator's own DOCKER_AUTH_CONFIG and $HOME/.docker/config.json may "
            "add a pull Secret: only the operator knows them"
        )
        return None, notes
    config = authconfig.parse_auth_config(text, source_name="DOCKER_AUTH_CONFIG (job variable)")
    registries = matching.registries_of(images)
    helpers: list[str] = []

    def no_helper(name: str, registry: str) -> Any:
        # Helpers run on the operator's host: here we can only say one would be asked.
        helpers.append(f"docker-credential-{name} for {registry}")
        return None

    creds = matching.select_credentials(config, registries, no_helper)
    if helpers:
        notes.append("credential helpers run by the operator: " + ", ".join(helpers))
    if creds or helpers:
        return secret.pull_secret_name(job.name), notes
    return None, notes


def render_one(
    doc: Manifest, namespace: str | None, config_path: str | None, attempt: int
) -> tuple[Manifest, str | None, list[str]]:
    meta = doc["metadata"]
    job = Job(
        name=meta["name"],
        namespace=namespace or meta.get("namespace") or "default",
        uid=UID_PLACEHOLDER,
        generation=1,
        spec=parse_spec(doc.get("spec") or {}),
    )
    config = load_config(config_path, env={})
    images = [img for _, img in images_of(job, config)]
    pull_secret, notes = pull_secret_plan(job, images)
    return get_pod(job, attempt, config, pull_secret), pull_secret, notes


def run(args: argparse.Namespace) -> int:
    try:
        docs = read_cijobs(args.filename)
    except ManifestError as exc:
        print(f"cijob: {exc}", file=sys.stderr)
        return 1
    pods = []
    for doc in docs:
        try:
            pod, pull_secret, notes = render_one(doc, args.namespace, args.config, args.attempt)
        except JobError as exc:
            # what the operator would write to the status: the job would end Failed
            print(
                f"cijob: {doc['metadata']['name']}: the job would fail with {exc.reason}: "
                f"{exc.message}",
                file=sys.stderr,
            )
            return 1
        except (OSError, ValueError) as exc:
            print(f"cijob: {exc}", file=sys.stderr)
            return 1
        name = doc["metadata"]["name"]
        print(f"# {name}: pull Secret {pull_secret or '(none)'}", file=sys.stderr)
        for note in notes:
            print(f"# {name}: {note}", file=sys.stderr)
        pods.append(pod)
    if args.output == "json":
        print(json.dumps(pods[0] if len(pods) == 1 else pods, indent=2))
    else:
        sys.stdout.write(yaml.safe_dump_all(pods, sort_keys=False, explicit_start=True))
    return 0
