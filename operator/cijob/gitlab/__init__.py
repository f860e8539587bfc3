"""`.gitlab-ci.yml` as GitLab reads it, turned into CiJob manifests (`cijob convert`)."""
