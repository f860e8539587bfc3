"""spec.source: the git checkout a job's clone init container makes before anything else."""
