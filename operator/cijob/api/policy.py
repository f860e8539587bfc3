"""The ValidatingAdmissionPolicy that checks the string-or-map fields CRD rules cannot see.

`image` and each `services` entry take a string or a map, as in `.gitlab-ci.yml`. A
structural schema can only leave such a field untyped, and the CEL rules of a CRD cannot
reach untyped fields; a ValidatingAdmissionPolicy evaluates CEL over the whole object, so
the API server still rejects bad input at `kubectl apply` time.
"""

from __future__ import annotations

from typing import Any

from cijob import api
from cijob.api.rules import ALIASES, DIGEST, IMAGE_REFERENCE, MAX_IMAGE_LENGTH

NAME = f"{api.PLURAL}.{api.GROUP}"

_PULL_POLICIES = "['always', 'if-not-present', 'never', 'Always', 'IfNotPresent', 'Never']"
_IMAGE_KEYS = "['name', 'entrypoint', 'pullPolicy']"
_SERVICE_KEYS = "['name', 'alias', 'entrypoint', 'command', 'variables', 'pullPolicy']"


def _name_of(x: str) -> str:
    """The image reference of an entry `x`, whichever form it has ('' when it has none)."""
    return (
        f"(type({x}) == string ? {x} : (type({x}) == map && has({x}.name) "
        f"&& type({x}.name) == string ? {x}.name : ''))"
    )


def _shape_ok(x: str, keys: str) -> str:
    return (
        f"(type({x}) == string || (type({x}) == map && has({x}.name) "
        f"&& type({x}.name) == string && {x}.all(k, k in {keys})))"
    )


def _ref_ok(x: str) -> str:
    n = _name_of(x)
    # a name referring to variables is checked by the operator once it has expanded them
    return (
        f"({n}.size() <= {MAX_IMAGE_LENGTH} && "
        f"({n}.contains('$') || {n}.matches(r'{IMAGE_REFERENCE}')))"
    )


def _digest_ok(x: str) -> str:
    n = _name_of(x)
    return (
        f"({n}.contains('$') || !{n}.contains('@') || "
        f"{n}.substring({n}.indexOf('@') + 1).matches(r'{DIGEST}'))"
    )


def _strings(x: str) -> str:
    return f"(type({x}) == list && {x}.all(s, type(s) == string))"


def _fields_ok(x: str) -> str:
    """Typed keys of the map form (a string entry has none)."""
    return (
        f"(type({x}) == string || ("
        f"(!has({x}.entrypoint) || {_strings(x + '.entrypoint')}) && "
        f"(!has({x}.command) || {_strings(x + '.command')}) && "
        f"(!has({x}.pullPolicy) || {x}.pullPolicy in {_PULL_POLICIES}) && "
        f"(!has({x}.variables) || (type({x}.variables) == map && "
        f"{x}.variables.all(k, type({x}.variables[k]) == string)))))"
    )


def _alias_ok(x: str) -> str:
    return (
        f"(type({x}) == string || !has({x}.alias) || (type({x}.alias) == string "
        f"&& {x}.alias.size() <= 1024 && {x}.alias.matches(r'{ALIASES}')))"
    )


def _first_bad(check: str) -> str:
    """A message expression naming the first service entry that fails `check`."""
    return f"object.spec.services.filter(s, !{check.replace('X', 's')}).map(s, {_name_of('s')})[0]"


def _validation(expression: str, message: str, message_expression: str | None = None) -> Any:
    v: dict[str, str] = {"expression": expression, "message": message, "reason": "Invalid"}
    if message_expression:
        v["messageExpression"] = message_expression
    return v


def _validations() -> list[Any]:
    img = "object.spec.image"
    has_img = "!has(object.spec.image) || "
    svcs = "!has(object.spec.services) || object.spec.services.all(X, {})"
    checks = [
        (
            has_img + _shape_ok(img, _IMAGE_KEYS),
            "spec.image must be an image reference string or a map with a string `name` "
            "and only the keys name, entrypoint, pullPolicy",
            None,
        ),
        (
            has_img + _ref_ok(img),
            "spec.image is not a valid image reference",
            f"'spec.image: ' + {_name_of(img)} + ' is not a valid image reference (like "
            "ruby:2.6, registry.example.com:5000/group/image:tag or name@sha256:<64 hex>, "
            "with a lowercase repository path)'",
        ),
        (
            has_img + _digest_ok(img),
            "spec.image: digest must be sha256: followed by 64 lowercase hex characters",
            None,
        ),
        (
            has_img + _fields_ok(img),
            "spec.image: entrypoint must be a list of strings and pullPolicy one of always, "
            "if-not-present, never",
            None,
        ),
    ]
    per_service = [
        (
            _shape_ok("X", _SERVICE_KEYS),
            "spec.services: each entry must be an image reference string or a map with a "
            "string `name` and only the keys name, alias, entrypoint, command, variables, "
            "pullPolicy",
            False,
        ),
        (_ref_ok("X"), "is not a valid image reference", True),
        (
            _digest_ok("X"),
            "has a digest that is not sha256: followed by 64 lowercase hex characters",
            True,
        ),
        (
            _alias_ok("X"),
            "has an alias that is not DNS-1123 labels (lowercase letters, digits and hyphens, "
            "at most 63 characters) separated by commas or spaces",
            True,
        ),
        (
            _fields_ok("X"),
            "has entrypoint/command that are not lists of strings, variables that are not "
            "strings, or a pullPolicy other than always, if-not-present, never",
            True,
        ),
    ]
    out = [_validation(e, m, me) for e, m, me in checks]
    for check, message, named in per_service:
        expression = svcs.format(check)
        if named:
            out.append(
                _validation(
                    expression,
                    f"spec.services: an entry {message}",
                    f"'spec.services: ' + {_first_bad(check)} + ' {message}'",
                )
            )
        else:
            out.append(_validation(expression, message))
    return out


def _policy(name: str, validations: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "cijob-operator"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [api.GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [api.PLURAL],
                    }
                ]
            },
            "validations": validations,
        },
    }


def _binding(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "cijob-operator"}},
        "spec": {"policyName": name, "validationActions": ["Deny"], **spec},
    }


def policy() -> dict[str, Any]:
    return _policy(NAME, _validations())


def binding() -> dict[str, Any]:
    return _binding(NAME)


# A CiJob is readable through the built-in `view` role: credentials written into it are not
# secret. This policy refuses them; its binding skips namespaces the platform labels
# single-tenant, and the chart leaves both out with inlineDockerAuthConfig.allowed.
CREDENTIALS_NAME = f"{api.PLURAL}-credentials.{api.GROUP}"
INLINE_AUTH_LABEL = f"{api.GROUP}/inline-docker-auth-config"
INLINE_AUTH_ALLOWED = "allowed"
INLINE_AUTH_MESSAGE = (
    "spec.variables.DOCKER_AUTH_CONFIG: registry credentials written into a CiJob can be read "
    "by everyone who may view it; put them in a Secret (kubectl create secret generic "
    "registry-creds --from-file=DOCKER_AUTH_CONFIG=config.json) and name it in "
    "spec.variablesFrom: [{secretRef: {name: registry-creds}}]"
)


def _inline_auth(obj: str) -> str:
    return f"(has({obj}.spec.variables) && 'DOCKER_AUTH_CONFIG' in {obj}.spec.variables)"


def credentials_policy() -> dict[str, Any]:
    # An update of a job that had it already is let through, so such a job can be canceled.
    expression = (
        f"!{_inline_auth('object')} || "
        f"(request.operation == 'UPDATE' && {_inline_auth('oldObject')})"
    )
    validation = {"expression": expression, "message": INLINE_AUTH_MESSAGE, "reason": "Forbidden"}
    return _policy(CREDENTIALS_NAME, [validation])


def credentials_binding() -> dict[str, Any]:
    single_tenant = {
        "key": INLINE_AUTH_LABEL,
        "operator": "NotIn",
        "values": [INLINE_AUTH_ALLOWED],
    }
    return _binding(
        CREDENTIALS_NAME,
        matchResources={"namespaceSelector": {"matchExpressions": [single_tenant]}},
    )
