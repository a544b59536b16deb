"""What several test folders share; the shipped kit, ``bearer_grpc.testing``, holds the rest.

- :mod:`.service`: a real TokenService on a free port, in a loop thread of its own
  (:func:`running_service`); :func:`wait_until`, a deadline instead of a sleep.
- :mod:`.protected`: the kit's Echo behind bearer_grpc's server interceptor (:func:`protect`),
  with the policy the interceptor, security and fault tests use (:func:`echo_policy`).
- :mod:`.processes`: child processes read line by line (:class:`ServeProcess`),
  ``bearer-grpc serve`` among them (:func:`running_server`).
- :mod:`.cli`: ``bearer-grpc`` commands in this process or as real ones (:class:`Cli`).
- :mod:`.postgres`: a fresh PostgreSQL schema per use (:func:`pg_schema_url`).
- :mod:`.examples`: the example modules of examples/, loaded in this process.

Every name is importable from ``tests.harness`` itself.
"""

from bearer_grpc.testing import LoopThread
from tests.harness.cli import (
    COMMAND_TIMEOUT,
    ERROR_PREFIX,
    Cli,
    CliResult,
    assert_one_line_error,
    describe,
)
from tests.harness.examples import (
    EXAMPLES,
    REPO,
    load_example,
)
from tests.harness.postgres import (
    PG_DSN_ENV,
    pg_dsn,
    pg_schema_url,
)
from tests.harness.processes import (
    ENV_PREFIX,
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServeProcess,
    bearer_grpc_command,
    clean_env,
    json_lines,
    running_server,
    start_server,
)
from tests.harness.protected import (
    ECHO_ADMIN_SCOPE,
    ECHO_AUDIENCE,
    ECHO_METHODS,
    ECHO_SCOPE,
    Protected,
    echo_policy,
    protect,
)
from tests.harness.service import (
    NOT_SERVING,
    SERVING,
    RunningService,
    health_status,
    jwt_segment,
    refusal,
    running_service,
    wait_until,
)

__all__ = [
    "COMMAND_TIMEOUT",
    "ECHO_ADMIN_SCOPE",
    "ECHO_AUDIENCE",
    "ECHO_METHODS",
    "ECHO_SCOPE",
    "ENV_PREFIX",
    "ERROR_PREFIX",
    "EXAMPLES",
    "NOT_SERVING",
    "PG_DSN_ENV",
    "REPO",
    "SERVING",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "Cli",
    "CliResult",
    "LoopThread",
    "Protected",
    "RunningService",
    "ServeProcess",
    "assert_one_line_error",
    "bearer_grpc_command",
    "clean_env",
    "describe",
    "echo_policy",
    "health_status",
    "json_lines",
    "jwt_segment",
    "load_example",
    "pg_dsn",
    "pg_schema_url",
    "protect",
    "refusal",
    "running_server",
    "running_service",
    "start_server",
    "wait_until",
]
