"""`make chaos`: many CiJobs under injected faults, then checks of what must always hold."""
