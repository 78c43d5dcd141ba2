"""``ContainerOperator``: an Airflow task that runs as a rolebridge job with its own AWS identity.

Modelled on Conveyor's ``ConveyorContainerOperatorV2`` (conveyor-semantics.md §3.1): ``cmds`` and
``arguments`` make the command line, ``env_vars`` its environment, ``aws_role`` the role it assumes
(a bare name in the cluster's account or a full ARN), in ``project`` and ``environment``.
``arguments``, ``aws_role``, ``env_vars`` and ``cmds`` are Airflow templates (``"--date", "{{ ds }}"``);
``{{ env }}`` / ``{{ environment }}`` render to the task's environment, like Conveyor's
``macros.conveyor.env()``. Without ``aws_role`` the project's default applies (explicit > default).

The run is an ordinary rolebridge run (``rolebridge runs list`` shows it): the job gets its own
service account, a refreshed token file and the standard SDK variables; its output goes to the
task log, followed by who it became. A refused assume or a non-zero exit fails the task.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

try:
    from airflow.exceptions import AirflowException
except ImportError:  # pragma: no cover - very old/new layouts
    AirflowException = RuntimeError  # type: ignore[misc,assignment]


class ContainerOperator(BaseOperator):
    template_fields: Sequence[str] = ("cmds", "arguments", "env_vars", "aws_role", "environment")
    ui_color = "#d6eaf8"

    def __init__(self, *, cmds: Sequence[str], arguments: Sequence[str] | None = None,
                 env_vars: dict[str, str] | None = None, aws_role: str | None = None, environment: str,
                 project: str, cluster: str | None = None, region: str = "us-east-1",
                 data_dir: str | None = None, database_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cmds = list(cmds)
        self.arguments = list(arguments or [])
        self.env_vars = dict(env_vars or {})
        self.aws_role = aws_role
        self.environment = environment
        self.project = project
        self.cluster = cluster
        self.region = region
        self.data_dir = data_dir
        self.database_url = database_url

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Add ``env``/``environment``/``project`` to the template context, then render as usual."""
        try:
            context["env"] = self.environment
            context["environment"] = self.environment
            context["project"] = self.project
        except TypeError:  # a read-only context: templates just cannot use them
            pass
        super().render_template_fields(context, jinja_env)

    def execute(self, context: Any) -> dict[str, Any]:
        from rolebridge import errors
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import projects as proj
        from rolebridge.platform import runs
        from rolebridge.platform.server_info import running_server

        services = open_services(self.data_dir, self.database_url)
        try:
            default = proj.get_project(services, self.project).aws_role
        except errors.NoSuchEntity:
            default = None
        role = proj.choose_role(self.aws_role, None, default, environment=self.environment, project=self.project)
        cluster = proj.cluster_for_environment(services, self.environment, self.cluster)
        req = runs.RunRequest(cluster=cluster, project=self.project, environment=self.environment,
                              command=[*self.cmds, *self.arguments], aws_role=role,
                              env={k: str(v) for k, v in self.env_vars.items()}, region=self.region)
        server = running_server(services.store.paths.data_dir)
        row = runs.create_run(services, req)
        self.log.info("rolebridge run %s: %s in %s as %s (role %s)", row["id"], self.project, self.environment,
                      row["subject"], row["role_arn"] or "-")
        sup = runs.Supervision(sts_url=server.url, ca_bundle=server.ca_bundle)
        self._supervision = sup
        result: dict[str, Any] = {}

        def supervise() -> None:
            try:
                result["code"] = runs.execute(services, row["id"], req, sup)
            except BaseException as exc:
                result["error"] = exc

        worker = threading.Thread(target=supervise, name=f"rolebridge-{row['id']}", daemon=True)
        worker.start()
        try:
            pending = b""
            for chunk in runs.follow_log(services, row["id"]):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.log.info("%s", line.decode("utf-8", "replace"))
            if pending:
                self.log.info("%s", pending.decode("utf-8", "replace"))
        except BaseException:
            sup.stop.set()  # the task was killed: cancel the job
            raise
        finally:
            worker.join(timeout=30)
        if "error" in result:
            raise result["error"]
        final = runs.get_run(services, row["id"])
        outcome = final.get("assume") or {}
        if outcome.get("ok"):
            self.log.info("rolebridge run %s assumed %s", final["id"], outcome["assumed_arn"])
        if final["status"] != "succeeded":
            reason = (f"{outcome.get('error_code')}: {outcome.get('error_message')} ({outcome.get('detail')}; "
                      f"fix: {outcome.get('fix')})" if outcome and not outcome.get("ok") else final["message"])
            raise AirflowException(f"rolebridge run {final['id']} {final['status']}: {reason}")
        return {"run_id": final["id"], "assumed_arn": outcome.get("assumed_arn"), "exit_code": final["exit_code"]}

    def on_kill(self) -> None:
        """Airflow's kill hook; the supervisor thread sees the stop flag and cancels the job."""
        sup = getattr(self, "_supervision", None)
        if sup is not None:
            sup.stop.set()
