"""The CiJob API (`cijob.dev/v1alpha1`): pydantic models, the single source of the CRD."""

GROUP = "cijob.dev"
VERSION = "v1alpha1"
KIND = "CiJob"
PLURAL = "cijobs"
SINGULAR = "cijob"
SHORT_NAMES = ["cij"]
API_VERSION = f"{GROUP}/{VERSION}"
