"""Which credentials a job gets: one per registry its images come from, matched by host:port."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cijob.credentials.authconfig import AuthConfig, Credential, registry_key
from cijob.images import parse_image

# (helper name, registry key) -> the helper's credentials, or None when it has none for it.
HelperRunner = Callable[[str, str], Credential | None]


def registries_of(images: Iterable[str]) -> list[str]:
    """The distinct registries of `images`, first seen first, spelled as in the references.

    `ruby` and `index.docker.io/library/ruby` give `docker.io`. The spelling is kept (not
    lower-cased) because the kubelet matches pull-secret keys against it case-sensitively.
    """
    seen: dict[str, None] = {}
    for image in images:
        seen.setdefault(parse_image(image).registry, None)
    return list(seen)


def select_credentials(
    config: AuthConfig, registries: Iterable[str], run_helper: HelperRunner
) -> dict[str, Credential]:
    """The credentials for each of `registries` that has some, keyed as given.

    Only the registries asked for are returned, so a job gets nothing it does not pull from.
    Per registry, matching host and port exactly (Hub aliases are one registry):

    1. a `credHelpers` entry names a helper: its answer is final, "not found" included
       (Docker CLI's `getConfiguredCredentialStore`); an entry of "" skips `credsStore`;
    2. else `credsStore`, if set: its credentials if it has some;
    3. else the static `auths` entry.

    Docker stops at step 2 even when the store has nothing; GitLab Runner (which merges `auths`,
    the store's list and `credHelpers`) falls back to the static entry, and so do we: a config
    with both a store and an `auths` entry for one registry was written by hand to be used.
    Each helper is run at most once per registry; `run_helper` gets the normalised key.
    """
    answers: dict[tuple[str, str], Credential | None] = {}

    def ask(helper: str, key: str) -> Credential | None:
        if (helper, key) not in answers:
            answers[helper, key] = run_helper(helper, key)
        return answers[helper, key]

    selected: dict[str, Credential] = {}
    for registry in registries:
        if registry in selected:
            continue
        credential = _resolve(config, registry_key(registry), ask)
        if credential is not None:
            selected[registry] = credential
    return selected


def _resolve(config: AuthConfig, key: str, ask: HelperRunner) -> Credential | None:
    helper = config.cred_helpers.get(key)
    if helper:
        return ask(helper, key)
    if helper is None and config.creds_store:
        stored = ask(config.creds_store, key)
        if stored is not None:
            return stored
    return config.auths.get(key)
