"""The job lifecycle as pure decisions: pod state to attempt outcome to CiJob status."""
