"""What several test folders share; the shipped kit, ``bearer_grpc.testing``, holds the rest.

- :mod:`.service`: a real TokenService on a free port, in a loop thread of its own
  (:func:`running_service`); :func:`wait_until`, a deadline instead of a sleep.
- :mod:`.protected`: the kit's Echo behind bearer_grpc's server interceptor (:func:`protect`),
  with the policy the interceptor, security and fault tests use (:func:`echo_policy`), and
  how it refuses (:func:`assert_challenged`).
- :mod:`.processes`: child processes read line by line (:class:`ServeProcess`),
  ``bearer-grpc serve`` among them (:func:`running_server`).
- :mod:`.cli`: ``bearer-grpc`` commands in this process or as real ones (:class:`Cli`).
- :mod:`.postgres`: a fresh PostgreSQL schema per use (:func:`pg_schema_url`), an empty
  store on each backend (:data:`BACKENDS`, :func:`backend_url`).
- :mod:`.grants`: users with a known password, grant requests, VerifyToken (:func:`verify`).
- :mod:`.http_face`: a TokenService with its OAuth HTTP face (:func:`http_service`).
- :mod:`.pki`: a throwaway CA, server and client certificates (:func:`make_pki`).
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
from tests.harness.grants import (
    PASSWORD,
    USER_AUDIENCES,
    USER_SCOPES,
    add_user,
    call_error,
    client_request,
    password_request,
    refresh_request,
    verify,
)
from tests.harness.http_face import HTTP_AUDIENCE, HTTP_SCOPES, Http, free_port, http_service
from tests.harness.pki import Identity, Pki, PkiFiles, make_pki, pki_files
from tests.harness.postgres import (
    BACKENDS,
    PG_DSN_ENV,
    backend_url,
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
    aio_extras,
    assert_challenged,
    challenge,
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
    running_on,
    running_service,
    wait_until,
)

__all__ = [
    "BACKENDS",
    "COMMAND_TIMEOUT",
    "ECHO_ADMIN_SCOPE",
    "ECHO_AUDIENCE",
    "ECHO_METHODS",
    "ECHO_SCOPE",
    "ENV_PREFIX",
    "ERROR_PREFIX",
    "EXAMPLES",
    "HTTP_AUDIENCE",
    "HTTP_SCOPES",
    "NOT_SERVING",
    "PASSWORD",
    "PG_DSN_ENV",
    "REPO",
    "SERVING",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "USER_AUDIENCES",
    "USER_SCOPES",
    "Cli",
    "CliResult",
    "Http",
    "Identity",
    "LoopThread",
    "Pki",
    "PkiFiles",
    "Protected",
    "RunningService",
    "ServeProcess",
    "add_user",
    "aio_extras",
    "assert_challenged",
    "assert_one_line_error",
    "backend_url",
    "bearer_grpc_command",
    "call_error",
    "challenge",
    "clean_env",
    "client_request",
    "describe",
    "echo_policy",
    "free_port",
    "health_status",
    "http_service",
    "json_lines",
    "jwt_segment",
    "load_example",
    "make_pki",
    "password_request",
    "pg_dsn",
    "pg_schema_url",
    "pki_files",
    "protect",
    "refresh_request",
    "refusal",
    "running_on",
    "running_server",
    "running_service",
    "start_server",
    "verify",
    "wait_until",
]
