"""Projects, environments and job definitions; the project file `rolebridge.yaml`.

A project file declares the project's name, a default `aws_role` and its jobs::

    project: cross_account_sample
    aws_role: "sample-{{ env }}"          # Jinja over env / environment / project
    runner: kubernetes                    # optional: where jobs run (local, the default, or kubernetes)
    image: "registry.example/sample:{{ env }}"   # the container image on Kubernetes (templated too)
    kube_context: kind-rb                 # optional: the kubeconfig context (default: the current one)
    jobs:
      whoami:
        command: [aws, sts, get-caller-identity]
        args: []
        env: {LOG_LEVEL: info}
        aws_role: "arn:aws:iam::222222222222:role/cross-account-sample-{{ env }}"
        retries: 2            # extra attempts after a failure
        retry_backoff: 1.0    # seconds before the first retry, doubled each time
        runner: local         # a job may override runner / image / kube_context, key by key

Templates are rendered in a sandbox with undefined names refused, so a typo (`{{ enviroment }}`)
is an error at run time rather than a role named `sample-`. The explicit `--aws-role` of a run wins
over the job's, which wins over the project default (conveyor-semantics.md §2.6); `runner`,
`image` and `kube_context` follow the same order (command line > job > project > a local process).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import delete, select

from rolebridge import errors
from rolebridge.platform.roles import DNS_LABEL, check_environment, check_project
from rolebridge.services import Services
from rolebridge.store.schema import Cluster, Environment, JobDefinition, Project

PROJECT_FILE = "rolebridge.yaml"
MAX_RETRIES = 10
RUNNERS = ("local", "kubernetes")
RUNNER_KEYS = ("runner", "image", "kube_context")
_JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass
class JobDef:
    name: str
    command: list[str]
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    aws_role: str | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    runner_settings: dict[str, str] = field(default_factory=dict)  # runner / image / kube_context given

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "command": self.command, "args": self.args, "env": self.env,
                "aws_role": self.aws_role, "retries": self.retries, "retry_backoff": self.retry_backoff,
                **{k: self.runner_settings.get(k) for k in RUNNER_KEYS}}


@dataclass
class ProjectFile:
    name: str
    aws_role: str | None
    jobs: dict[str, JobDef]
    source: str | None = None
    runner_settings: dict[str, str] = field(default_factory=dict)  # the project's defaults for its jobs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "aws_role": self.aws_role, "source": self.source,
                **{k: self.runner_settings.get(k) for k in RUNNER_KEYS},
                "jobs": [j.to_dict() for j in self.jobs.values()]}

    def workdir(self) -> str | None:
        """Where the project's jobs run: the directory of the project file it was synced from (None for
        a project never synced from a file). A directory that has gone since is an error, not the caller's cwd."""
        if not self.source:
            return None
        directory = Path(self.source).parent
        if not directory.is_dir():
            raise errors.ValidationError(
                f"Project {self.name} was synced from {self.source}, whose directory no longer exists: "
                "sync it again with `rolebridge job sync DIR`, or pass --project-dir.")
        return str(directory)


def render(template: str, *, environment: str, project: str) -> str:
    """Render a Jinja template with `env`/`environment`/`project`; errors name the template."""
    try:
        return _JINJA.from_string(template).render(env=environment, environment=environment, project=project)
    except TemplateError as exc:
        raise errors.ValidationError(f"Template {template!r} cannot be rendered: {exc}") from exc


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise errors.ValidationError(f"{what} must be a string or a list of strings")


def _runner_settings(raw: dict[str, Any], what: str) -> dict[str, str]:
    """The `runner` / `image` / `kube_context` keys present in ``raw``, checked (a typo such as
    `runner: kubernetse` is an error at sync time, not a job that silently runs locally)."""
    out: dict[str, str] = {}
    for key in RUNNER_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise errors.ValidationError(f"{what}: {key} must be a non-empty string")
        out[key] = value.strip()
    if out.get("runner", "local") not in RUNNERS:
        raise errors.ValidationError(f"{what}: runner must be one of {', '.join(RUNNERS)}, not {out['runner']!r}")
    return out


def _job(name: str, raw: Any) -> JobDef:
    if not isinstance(raw, dict):
        raise errors.ValidationError(f"job {name!r} must be a mapping")
    if not DNS_LABEL.match(name):
        raise errors.ValidationError(f"job name {name!r} must be a DNS label (lowercase, digits, '-')")
    unknown = set(raw) - {"name", "command", "args", "arguments", "env", "env_vars", "aws_role", "retries",
                          "retry_backoff", *RUNNER_KEYS}
    if unknown:
        raise errors.ValidationError(f"job {name!r}: unknown keys {sorted(unknown)}")
    command = _strings(raw.get("command"), f"job {name!r}: command")
    if not command:
        raise errors.ValidationError(f"job {name!r} has no command")
    env = raw.get("env", raw.get("env_vars")) or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
        raise errors.ValidationError(f"job {name!r}: env must map names to values")
    role = raw.get("aws_role")
    if role is not None and not isinstance(role, str):
        raise errors.ValidationError(f"job {name!r}: aws_role must be a string")
    retries = raw.get("retries", 0)
    backoff = raw.get("retry_backoff", 1.0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise errors.ValidationError(f"job {name!r}: retries must be an integer 0..{MAX_RETRIES}")
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not 0 <= backoff <= 3600:
        raise errors.ValidationError(f"job {name!r}: retry_backoff must be 0..3600 seconds")
    return JobDef(name=name, command=command, args=_strings(raw.get("args", raw.get("arguments")), "args"),
                  env={k: str(v) for k, v in env.items()}, aws_role=role, retries=retries,
                  retry_backoff=float(backoff), runner_settings=_runner_settings(raw, f"job {name!r}"))


def parse_project(data: Any, *, source: str | None = None) -> ProjectFile:
    if not isinstance(data, dict):
        raise errors.ValidationError("the project file must be a mapping")
    name = data.get("project", data.get("name"))
    if not isinstance(name, str):
        raise errors.ValidationError("the project file needs `project: NAME`")
    check_project(name)
    role = data.get("aws_role")
    if role is not None and not isinstance(role, str):
        raise errors.ValidationError("aws_role must be a string")
    raw_jobs = data.get("jobs") or {}
    if isinstance(raw_jobs, list):
        raw_jobs = {j.get("name"): j for j in raw_jobs if isinstance(j, dict)}
    if not isinstance(raw_jobs, dict):
        raise errors.ValidationError("jobs must be a mapping of job name to job")
    jobs = {str(n): _job(str(n), j) for n, j in raw_jobs.items()}
    return ProjectFile(name=name, aws_role=role, jobs=jobs, source=source,
                       runner_settings=_runner_settings(data, f"project {name}"))


def load_project_file(path: str | Path) -> ProjectFile:
    """`path` is the file or the project directory holding `rolebridge.yaml`."""
    p = Path(path)
    if p.is_dir():
        p = p / PROJECT_FILE
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise errors.NoSuchEntity(f"No project file at {p}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise errors.ValidationError(f"{p} is not valid YAML: {exc}") from exc
    return parse_project(data, source=str(p.resolve()))


def save_project(services: Services, pf: ProjectFile, *, now: float | None = None) -> None:
    """Upsert the project and replace its job definitions with the file's."""
    now = time.time() if now is None else now
    with services.store.tx() as s:
        row = s.get(Project, pf.name)
        if row is None:
            s.add(Project(name=pf.name, default_aws_role=pf.aws_role, source=pf.source, created_at=now,
                          updated_at=now, runner_settings=pf.runner_settings or None))
        else:
            row.default_aws_role, row.source, row.updated_at = pf.aws_role, pf.source, now
            row.runner_settings = pf.runner_settings or None
        s.flush()
        s.execute(delete(JobDefinition).where(JobDefinition.project == pf.name))
        for j in pf.jobs.values():
            s.add(JobDefinition(project=pf.name, name=j.name, command=j.command, args=j.args, env=j.env,
                                aws_role=j.aws_role, retries=j.retries, retry_backoff=j.retry_backoff,
                                runner_settings=j.runner_settings or None))


def ensure_project(services: Services, name: str, *, now: float | None = None) -> None:
    """Projects need no create step before a run (DESIGN.md); the first run records one."""
    check_project(name)
    now = time.time() if now is None else now
    with services.store.tx() as s:
        if s.get(Project, name) is None:
            s.add(Project(name=name, default_aws_role=None, source=None, created_at=now, updated_at=now))


def ensure_environment(services: Services, name: str, cluster: str, *, now: float | None = None) -> None:
    check_environment(name)
    now = time.time() if now is None else now
    with services.store.tx() as s:
        found = s.execute(select(Environment).where(Environment.cluster == cluster, Environment.name == name)
                          ).scalar_one_or_none()
        if found is None:
            s.add(Environment(name=name, cluster=cluster, created_at=now))


def get_project(services: Services, name: str) -> ProjectFile:
    with services.store.read() as s:
        row = s.get(Project, name)
        if row is None:
            raise errors.NoSuchEntity(f"Project {name} does not exist. Register it with `rolebridge job sync DIR`.")
        jobs = s.execute(select(JobDefinition).where(JobDefinition.project == name)
                         .order_by(JobDefinition.name)).scalars()
        return ProjectFile(name=row.name, aws_role=row.default_aws_role, source=row.source,
                           runner_settings=dict(row.runner_settings or {}), jobs={
            j.name: JobDef(j.name, list(j.command), list(j.args), dict(j.env), j.aws_role, j.retries,
                           j.retry_backoff, dict(j.runner_settings or {})) for j in jobs})


def list_projects(services: Services) -> list[ProjectFile]:
    with services.store.read() as s:
        names = list(s.execute(select(Project.name).order_by(Project.name)).scalars())
    return [get_project(services, n) for n in names]


def list_environments(services: Services, cluster: str | None = None) -> list[dict[str, Any]]:
    with services.store.read() as s:
        q = select(Environment).order_by(Environment.cluster, Environment.name)
        if cluster is not None:
            q = q.where(Environment.cluster == cluster)
        return [{"name": e.name, "cluster": e.cluster, "namespace": e.name, "created_at": e.created_at}
                for e in s.execute(q).scalars()]


def cluster_for_environment(services: Services, environment: str, cluster: str | None) -> str:
    """The cluster a run goes to: the one given, else the environment's, else the only cluster."""
    if cluster:
        return cluster
    with services.store.read() as s:
        hosts = list(s.execute(select(Environment.cluster).where(Environment.name == environment)).scalars())
        if len(hosts) == 1:
            return hosts[0]
        clusters = list(s.execute(select(Cluster.name)).scalars())
    if not hosts and len(clusters) == 1:
        return clusters[0]
    where = f"on clusters {sorted(hosts)}" if hosts else "on no cluster yet"
    raise errors.ValidationError(f"Environment {environment} is {where}; say which with --cluster.")


def choose_role(explicit: str | None, job: JobDef | None, project_default: str | None, *, environment: str,
                project: str) -> str | None:
    """Explicit `--aws-role` > the job's `aws_role` > the project default; rendered for the environment."""
    for candidate in (explicit, job.aws_role if job else None, project_default):
        if candidate:
            return render(candidate, environment=environment, project=project).strip() or None
    return None


@dataclass(frozen=True)
class RunnerChoice:
    """Where one run executes: ``local`` (a process on this machine) or ``kubernetes`` (a Job)."""

    runner: str = "local"
    image: str | None = None
    kube_context: str | None = None

    @property
    def kubernetes(self) -> bool:
        return self.runner == "kubernetes"


def choose_runner(explicit: dict[str, str | None], job: JobDef | None, project: ProjectFile | None, *,
                  environment: str, project_name: str) -> RunnerChoice:
    """Command line > the job's settings > the project's > a local process, key by key.

    Key by key, so a project can say `runner: kubernetes` and `image:` once and a job override only its
    image. The image is a template like `aws_role` (one image per environment). A Kubernetes run without
    an image is refused here, before anything is recorded."""
    merged: dict[str, str] = {}
    for layer in (project.runner_settings if project else {}, job.runner_settings if job else {},
                  {k: v for k, v in explicit.items() if v is not None}):
        merged.update(layer)
    runner = merged.get("runner", "local")
    if runner not in RUNNERS:
        raise errors.ValidationError(f"runner must be one of {', '.join(RUNNERS)}, not {runner!r}")
    if runner == "local":
        return RunnerChoice()
    image = render(merged["image"], environment=environment, project=project_name).strip() \
        if merged.get("image") else ""
    if not image:
        where = f"job {project_name}/{job.name}" if job else f"project {project_name}"
        raise errors.ValidationError(
            f"{where} runs on Kubernetes but names no image: set `image:` in rolebridge.yaml or pass --image IMAGE.")
    return RunnerChoice("kubernetes", image, merged.get("kube_context"))
