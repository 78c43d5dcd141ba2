"""The platform REST API (FastAPI, mounted at ``/api``; OpenAPI at ``/api/openapi.json``).

Clusters, projects, environments, runs and logs, for the CLI and for tools. Every request carries
``Authorization: Bearer rbk1...``, a token derived from one account's access keys
(``platform/api_auth.py``); a caller sees the clusters of its account and the environments and
runs on them. Projects are read-only here: they are registered from project files
(`rolebridge job sync`), so the API never accepts a command line to execute, only a reference to
a registered job. Routing and translation only; the work is in ``rolebridge.platform``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.platform import projects as proj
from rolebridge.platform import runs
from rolebridge.platform.api_auth import verify_token
from rolebridge.platform.clusters import get_cluster, list_clusters
from rolebridge.platform.server_info import running_server
from rolebridge.services import Services

NAME = r"^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$"
RUN_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
Status = Literal["pending", "running", "succeeded", "failed", "cancelled"]


class ErrorBody(BaseModel):
    code: str
    message: str


class ClusterOut(BaseModel):
    name: str
    account_id: str
    oidc_url: str
    thumbprint: str
    audience: str
    provider_url: str
    run_limit: int


class JobOut(BaseModel):
    name: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    aws_role: str | None
    retries: int
    retry_backoff: float
    runner: str | None = None
    image: str | None = None
    kube_context: str | None = None


class ProjectOut(BaseModel):
    name: str
    aws_role: str | None
    source: str | None
    runner: str | None = None
    image: str | None = None
    kube_context: str | None = None
    jobs: list[JobOut]


class EnvironmentOut(BaseModel):
    name: str
    cluster: str
    namespace: str
    created_at: float


class AssumeOut(BaseModel):
    ok: bool
    assumed_arn: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cause: str | None = None
    detail: str | None = None
    fix: str | None = None


class RunOut(BaseModel):
    id: str
    cluster: str
    account_id: str
    project: str
    environment: str
    namespace: str
    job: str | None
    service_account: str
    subject: str
    role_arn: str | None
    command: list[str]
    status: Status
    attempts: int
    max_attempts: int
    retry_backoff: float
    created_at: float
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    assume: AssumeOut | None
    message: str | None
    cancel_requested: bool
    runner: str = "local"
    placement: dict[str, str | None] | None = None


class RunIn(BaseModel):
    """Run a registered job (`project` + `job`) in an environment; ``aws_role`` overrides the job's."""

    project: str = Field(pattern=NAME, max_length=52)
    job: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length=63)
    environment: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length=63)
    cluster: str | None = Field(default=None, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length=63)
    aws_role: str | None = Field(default=None, min_length=1, max_length=2048)
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", max_length=32)


class LogOut(BaseModel):
    run_id: str
    offset: int
    next_offset: int
    status: Status
    data: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}}


def _caller(request: Request) -> Caller:
    """The account behind the request's bearer token (``api_auth``); 401 without a valid one."""
    services: Services = request.app.state.services
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        err = errors.MissingAuthenticationToken(
            "Send Authorization: Bearer <token derived from your access keys> (see docs/platform-api.md).")
        err.status = 401  # type: ignore[misc]
        raise err
    try:
        return verify_token(services, token.strip(), now=services.clock())
    except errors.AWSError as exc:
        exc.status = 401  # type: ignore[misc]
        raise


Who = Annotated[Caller, Depends(_caller)]


def create_platform_api(services: Services) -> FastAPI:
    api = FastAPI(title="rolebridge platform API", version="1", openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None, responses=ERRORS)

    @api.exception_handler(errors.AWSError)
    async def aws_error(_request: Request, exc: errors.AWSError) -> JSONResponse:
        status = 404 if isinstance(exc, errors.NoSuchEntity) else exc.status
        if status >= 500 and status != 503:
            status = 500
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=status)


    @api.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 shape, but a body that is not UTF-8 is echoed with replacement characters
        (the stock handler decodes the raw bytes strictly and answers 500)."""
        safe = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
        return JSONResponse({"detail": safe}, status_code=422)

    @api.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        """Framework errors (unparseable body, unknown path, wrong method) in the same shape as ours."""
        codes = {400: "ValidationError", 404: "NotFound", 405: "MethodNotAllowed"}
        return JSONResponse({"code": codes.get(exc.status_code, f"HTTP{exc.status_code}"), "message": str(exc.detail)},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    def own_cluster(who: Caller, name: str) -> Any:
        info = get_cluster(services, name)
        if info.account_id != who.account_id:
            raise errors.NoSuchEntity(f"Cluster {name} does not exist in account {who.account_id}.")
        return info

    def own_run(who: Caller, run_id: str) -> dict[str, Any]:
        row = runs.get_run(services, run_id)
        if row["account_id"] != who.account_id:
            raise errors.NoSuchEntity(f"Run {run_id} does not exist.")
        return row

    def cluster_out(info: Any) -> dict[str, Any]:
        return {**info.to_dict(), "run_limit": runs.run_limit(services, info.name)}

    @api.get("/clusters", response_model=list[ClusterOut], tags=["clusters"])
    def clusters(who: Who) -> list[dict[str, Any]]:
        """The caller's clusters, with the OIDC URL and thumbprint a target account registers."""
        return [cluster_out(c) for c in list_clusters(services) if c.account_id == who.account_id]

    @api.get("/clusters/{name}", response_model=ClusterOut, tags=["clusters"])
    def cluster(who: Who, name: str) -> dict[str, Any]:
        return cluster_out(own_cluster(who, name))

    @api.get("/projects", response_model=list[ProjectOut], tags=["projects"])
    def projects(who: Who) -> list[dict[str, Any]]:
        return [p.to_dict() for p in proj.list_projects(services)]

    @api.get("/projects/{name}", response_model=ProjectOut, tags=["projects"])
    def project(who: Who, name: str) -> dict[str, Any]:
        return proj.get_project(services, name).to_dict()

    @api.get("/environments", response_model=list[EnvironmentOut], tags=["environments"])
    def environments(who: Who, cluster: Annotated[str | None, Query(max_length=63)] = None
                     ) -> list[dict[str, Any]]:
        mine = {c.name for c in list_clusters(services) if c.account_id == who.account_id}
        return [e for e in proj.list_environments(services, cluster) if e["cluster"] in mine]

    @api.get("/runs", response_model=list[RunOut], tags=["runs"])
    def list_runs(who: Who, status: Status | None = None,
                  project: Annotated[str | None, Query(max_length=52)] = None,
                  cluster: Annotated[str | None, Query(max_length=63)] = None,
                  environment: Annotated[str | None, Query(max_length=63)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return runs.list_runs(services, account_id=who.account_id, cluster=cluster, project=project,
                              environment=environment, status=status, limit=limit)

    @api.post("/runs", response_model=RunOut, status_code=201, tags=["runs"])
    def submit(who: Who, body: RunIn) -> dict[str, Any]:
        """Run a registered job in its project's directory (where it was synced from); the server
        supervises it. Returns the run, ``pending`` or later."""
        pf = proj.get_project(services, body.project)
        job = pf.jobs.get(body.job)
        if job is None:
            raise errors.NoSuchEntity(f"Project {body.project} has no job {body.job}.")
        cluster_name = proj.cluster_for_environment(services, body.environment, body.cluster)
        own_cluster(who, cluster_name)
        if proj.choose_runner({}, job, pf, environment=body.environment, project_name=pf.name).kubernetes:
            raise errors.ValidationError(
                f"Job {pf.name}/{job.name} runs on Kubernetes, which the platform API does not submit to yet: "
                f"run it with `rolebridge job run {pf.name}/{job.name} --environment {body.environment}`.")
        role = proj.choose_role(body.aws_role, job, pf.aws_role, environment=body.environment, project=pf.name)
        req = runs.RunRequest(cluster=cluster_name, project=pf.name, environment=body.environment,
                              command=[*job.command, *job.args], aws_role=role, job=job.name, env=job.env,
                              retries=job.retries, retry_backoff=job.retry_backoff, region=body.region,
                              cwd=pf.workdir())
        server = running_server(services.store.paths.data_dir)
        sup = runs.Supervision(sts_url=server.url, ca_bundle=server.ca_bundle)
        return runs.start_in_background(services, req, sup)

    @api.get("/runs/{run_id}", response_model=RunOut, tags=["runs"])
    def show(who: Who, run_id: str) -> dict[str, Any]:
        return own_run(who, run_id)

    @api.post("/runs/{run_id}/cancel", response_model=RunOut, tags=["runs"])
    def cancel(who: Who, run_id: str) -> dict[str, Any]:
        """Stop the run: its process group is killed and its token deleted (on Kubernetes: its Job and
        service account are deleted)."""
        own_run(who, run_id)
        return runs.cancel_run(services, run_id)

    @api.get("/runs/{run_id}/logs", response_model=LogOut, tags=["logs"])
    def logs(who: Who, run_id: str, offset: Annotated[int, Query(ge=0, le=1 << 40)] = 0,
             limit: Annotated[int, Query(ge=1, le=1 << 20)] = 1 << 20) -> dict[str, Any]:
        row = own_run(who, run_id)
        data, nxt = runs.read_log(services, run_id, offset, limit)
        return {"run_id": run_id, "offset": offset, "next_offset": nxt, "status": row["status"],
                "data": data.decode("utf-8", "replace")}

    @api.get("/runs/{run_id}/logs.txt", response_class=PlainTextResponse, tags=["logs"])
    def logs_text(who: Who, run_id: str) -> str:
        own_run(who, run_id)
        data, _ = runs.read_log(services, run_id, 0, runs.log_max() + 4096)
        return data.decode("utf-8", "replace")

    api.state.services = services
    return api
