"""cijob-operator: run GitLab-style CI jobs as Kubernetes pods."""
