"""How a job attempt's container runs: the ``process`` executor and the shared run types.

An executor's ``run`` blocks until the attempt is over and reports an :class:`Outcome`; the
engine calls it from a small worker pool, so concurrency is bounded by the pool, not by the
number of jobs. ``simulate`` has no executor: the engine schedules scripted outcomes itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: AWS CLI images: their entrypoint is ``aws``. On the host that is the venv's awscli v1.
_AWS_CLI_IMAGE = re.compile(
    r"^(docker\.io/)?(amazon/aws-cli|public\.ecr\.aws/aws-cli/aws-cli)([:@].*)?$"
)

#: Host variables a command needs to start at all; nothing else leaks in (no host AWS creds).
_HOST_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "PYTHONPATH")


@dataclass(frozen=True)
class RunSpec:
    job_id: str
    attempt: int
    image: str
    command: list[str]
    environment: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    reason: str | None = None
    status_reason: str = "Essential container in task exited"
    output: str = ""


#: ``run`` calls this with a function that stops the attempt (TerminateJob, a timeout).
KillRegistrar = Callable[[Callable[[], None]], None]


class Executor(Protocol):
    name: str

    def run(self, spec: RunSpec, on_kill: KillRegistrar) -> Outcome: ...


def host_argv(image: str, command: list[str]) -> list[str]:
    """The argv that stands in for ``docker run IMAGE COMMAND`` on this host.

    The image's entrypoint is not available here, so it is mapped explicitly: AWS CLI images
    run ``python -m awscli COMMAND``; any other image runs its command as is.
    """
    if _AWS_CLI_IMAGE.match(image):
        return [sys.executable, "-m", "awscli", *command]
    return list(command)


def cannot_start(message: str) -> Outcome:
    return Outcome(
        exit_code=None,
        reason=f"CannotStartContainerError: {message}",
        status_reason="Task failed to start",
    )


class ProcessExecutor:
    """Runs the container command as a host process, in a scratch working directory."""

    name = "process"

    def run(self, spec: RunSpec, on_kill: KillRegistrar) -> Outcome:
        argv = host_argv(spec.image, spec.command)
        if not argv:
            return cannot_start(
                f"job {spec.job_id} has no command; the process executor cannot run image "
                f"{spec.image!r}'s default command. Set containerProperties.command."
            )
        env = {k: os.environ[k] for k in _HOST_VARIABLES if k in os.environ}
        env.update(spec.environment)
        workdir = tempfile.mkdtemp(prefix="batchbridge-job-")
        try:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # so a kill reaches the command's children too
                )
            except OSError as exc:
                return cannot_start(f"{argv[0]}: {exc.strerror or exc}")

            def kill() -> None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            on_kill(kill)
            output, _ = proc.communicate()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        code = proc.returncode
        # Docker reports a container killed by signal N as exit code 128 + N.
        exit_code = 128 - code if code < 0 else code
        return Outcome(exit_code=exit_code, output=output.decode("utf-8", "replace"))
