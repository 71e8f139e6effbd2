"""The texts of the replica role, out of memory, JS heap limits and DEBUG RELOAD / LOADAOF, byte for byte as
SPEC.md gives them (its addenda), each produced by `jshost.errors`."""

from __future__ import annotations

import pytest

from jshost import errors
from jshost.errors import ReloadErrors, ReplicaErrors
from tests.test_errors import _normalised, spec_text  # noqa: F401 - the fixture

# (what jshost produces, the text as the spec writes it)
TEXTS: list[tuple[str, str]] = [
    (errors.writes_on_replica("rg"),
     "Err can not run a function that might perform writes on a replica"),
    (errors.writes_on_replica("tf"),
     ("Err can not run a function that might perform writes on a replica or when the "
      '"avoid replication traffic" option is enabled')),
    (errors.can_not_lock_redis(errors.lock_replica_reason("rg")),
     "Can not lock Redis, Can not lock redis for write on replica"),
    (errors.can_not_lock_redis(errors.lock_replica_reason("tf")),
     ("Can not lock Redis, Can not lock redis for write on replica or when the "
      '"avoid replication traffic" option is enabled')),
    (ReplicaErrors.READONLY, "READONLY You can't write against a read only replica."),
    (ReplicaErrors.ALREADY_CONNECTED, "OK Already connected to specified master"),
    (ReplicaErrors.TRIM_DENIED, "Attempt to trim data on replica was denied."),
    (errors.OOM_CAN_NOT_RUN, "OOM can not run the function when out of memory"),
    (errors.can_not_lock_redis(errors.LOCK_OOM_REASON),
     "Can not lock Redis, OOM Can not lock redis for write"),
    (errors.REDIS_OOM, "OOM command not allowed when used memory > 'maxmemory'."),
    (errors.JS_ENGINE_OOM, "JS engine reached OOM state and can not run any more code"),
    (errors.compile_failed("tf", errors.JS_ENGINE_OOM),
     "Failed to compile library: JS engine reached OOM state and can not run any more code"),
    (errors.EXECUTION_TERMINATED, "Err Execution was terminated due to OOM or timeout"),
    (errors.failed_loading_library(errors.EXECUTION_TERMINATED),
     "Failed loading library: Err Execution was terminated due to OOM or timeout."),
    (ReloadErrors.RELOAD_FAILED, "ERR Error trying to load the RDB dump, check server logs."),
    (ReloadErrors.LOADAOF_FAILED, "ERR Error trying to load the AOF files, check server logs."),
    (ReloadErrors.RELOAD_OPTIONS,
     "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."),
    (ReloadErrors.LOAD_LOG.format(error="<load error>"),
     "Failed loading functions from rdb, Failed loading librart, <load error>."),
]
#: Redis' own texts the spec does not quote.
NOT_IN_SPEC = {ReplicaErrors.INVALID_MASTER_PORT}


@pytest.mark.parametrize(("produced", "expected"), TEXTS)
def test_text_is_exact(produced: str, expected: str) -> None:
    assert produced == expected


@pytest.mark.parametrize("expected", [expected for _, expected in TEXTS])
def test_text_is_in_the_spec(spec_text: str, expected: str) -> None:  # noqa: F811
    assert f"`{_normalised(expected)}`" in spec_text


@pytest.mark.parametrize("value", [
    value for cls in (ReplicaErrors, ReloadErrors) for name, value in vars(cls).items()
    if name.isupper() and value not in NOT_IN_SPEC])
def test_every_constant_is_covered(value: str) -> None:
    produced = {text for text, _ in TEXTS}
    assert value in produced or value.format(error="<load error>") in produced
