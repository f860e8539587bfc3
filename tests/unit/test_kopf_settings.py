"""kopf's settings: event handlers, server-side pod filter, paged listing, brief workers."""

from __future__ import annotations

import kopf
from kopf._cogs.structs import references

from cijob.kopf_settings import LIST_CHUNK, NoDiffBase, configure
from cijob.render import names

PODS = references.Resource(
    "", "v1", "pods", kind="Pod", singular="pod", namespaced=True, verbs=["list", "watch"]
)
CIJOBS = references.Resource(
    "cijob.dev", "v1alpha1", "cijobs", kind="CiJob", namespaced=True, verbs=["list", "watch"]
)


def test_pods_are_filtered_by_the_api_server_and_cijobs_are_not() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.watching.label_selectors.collect(PODS) == [names.JOB_LABEL]
    assert settings.watching.label_selectors.collect(CIJOBS) == []


def test_listing_is_paged_and_nothing_is_scanned() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.watching.chunk_size == LIST_CHUNK
    assert settings.scanning.disabled


def test_no_diff_base_is_built_kept_or_written() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "a", "annotations": {}}, "spec": {"x": 1}})
    patch = kopf.Patch()
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch


def test_configure_installs_the_empty_diff_base() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)


def test_idle_object_workers_exit_soon_but_do_not_spin() -> None:
    # kopf's worker keeps the object's last event while it waits; with a zero timeout its
    # wait_for would time out at once, forever, while events are queued.
    settings = kopf.OperatorSettings()
    default = settings.queueing.idle_timeout
    configure(settings)
    assert 0 < settings.queueing.idle_timeout < default


def test_kopf_posts_no_events_of_its_own() -> None:
    # Every write goes through cijob.kube.Kube, which a replica without the Lease refuses.
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.posting.enabled is False
