"""botocore's service models for IAM and STS, loaded once, and action routing.

The wire layer is driven entirely by the models botocore ships (the same JSON that the AWS
SDKs are generated from): input decoding, constraint checks and output serialization all walk
these shapes, so an operation added to IAM/STS needs no hand-written wire code here.
"""

from __future__ import annotations

import functools

import botocore.model
import botocore.session

from rolebridge import errors

# service -> (API version, XML namespace). Fixed by AWS; checked against the models in tests.
SERVICES: dict[str, tuple[str, str]] = {
    "iam": ("2010-05-08", "https://iam.amazonaws.com/doc/2010-05-08/"),
    "sts": ("2011-06-15", "https://sts.amazonaws.com/doc/2011-06-15/"),
}

_BY_VERSION = {version: service for service, (version, _ns) in SERVICES.items()}


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def service_model(service: str) -> botocore.model.ServiceModel:
    """The botocore model of ``service`` ("iam" or "sts"), loaded once per process."""
    if service not in SERVICES:
        raise KeyError(f"not an AWS Query service served here: {service!r}")
    return _session().get_service_model(service, api_version=SERVICES[service][0])


@functools.cache
def _operation_names(service: str) -> frozenset[str]:
    return frozenset(service_model(service).operation_names)


@functools.cache
def operation_model(service: str, action: str) -> botocore.model.OperationModel:
    """The operation model; raises ``InvalidAction`` (AWS's text) when the service has no such action."""
    if action not in _operation_names(service):
        raise errors.InvalidAction(_not_found(action, SERVICES[service][0]))
    return service_model(service).operation_model(action)


def namespace(service: str) -> str:
    return SERVICES[service][1]


def _not_found(action: str, version: str | None) -> str:
    # AWS's text, e.g. "Could not find operation ReplaceIamInstanceProfileAssociation for
    # version 2010-05-08" (fog/fog-aws#368; aws/aws-cli#37 for SES).
    return f"Could not find operation {action} for version {version if version else 'NONE'}"


def service_for(action: str | None, version: str | None) -> str:
    """Which service ("iam" | "sts") answers ``Action``/``Version``.

    IAM and STS share one endpoint here (AWS has two hosts), so the API ``Version`` routes the
    request. Without a ``Version`` the action name decides: IAM and STS have no operation names
    in common. A missing Action is ``MissingAction``; an action the service (or no service)
    has is ``InvalidAction`` "Could not find operation X for version Y".
    """
    if not action:
        raise errors.MissingAction()
    if version:
        service = _BY_VERSION.get(version)
        if service is None or action not in _operation_names(service):
            raise errors.InvalidAction(_not_found(action, version))
        return service
    for service in SERVICES:
        if action in _operation_names(service):
            return service
    raise errors.InvalidAction(_not_found(action, None))
