"""Registry credentials: find DOCKER_AUTH_CONFIG, parse it, keep what a job uses, build a Secret."""
