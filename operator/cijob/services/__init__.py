"""A job's services: their startup probes, image ports, readiness and failures."""
