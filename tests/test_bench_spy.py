"""`python -m bench.spy` folds py-spy's samples into layers: the innermost frame that belongs to
a layer names it (checked on canned samples; the sampling itself needs py-spy and ptrace)."""

from __future__ import annotations

from bench.spy import fold

RAW = "\n".join([
    # A store command made by a JS client call counts as store time, not host or JS time.
    "run (asyncio/runners.py:190);Calls._call_locked (jshost/host/calls.py:98);"
    "JS_CallInternal (jshost/_engine.cpython-311-x86_64-linux-gnu.so);"
    "Natives.call (jshost/host/natives.py:123);"
    "BaseFakeSocket._process_command (fakeredis/_socket/_base.py:225) 30",
    "run (asyncio/runners.py:190);Calls._call_locked (jshost/host/calls.py:98);"
    "JS_CallInternal (jshost/_engine.cpython-311-x86_64-linux-gnu.so) 20",
    "run (asyncio/runners.py:190);Connection._process (jshost/connection.py:277);"
    "RequestParser._parse_batch (jshost/resp.py:459) 40",
    "select (selectors.py:468) 10",
    "_run_once (asyncio/base_events.py:1898);select (selectors.py:468);0x7f16 (libc.so.6) 30",
    "_worker (concurrent/futures/thread.py:81);_queue_SimpleQueue_get_impl (libpython3.11.so);"
    "PyThread_acquire_lock_timed (libpython3.11.so);0x7f039f8aed90 (libc.so.6) 20",
    "not a sample line",
])


def test_fold_attributes_each_sample_to_its_innermost_layer() -> None:
    folded = fold(RAW)
    assert folded["samples"] == 100
    assert folded["idle_samples"] == 50  # waiting in select: not counted
    assert folded["layers"] == {
        "RESP parsing and encoding": 40.0,
        "embedded store (fakeredis + jshost wrapper)": 30.0,
        "JS engine (QuickJS, native)": 20.0,
        "event loop and sockets (asyncio, syscalls)": 10.0,
    }
    assert folded["top_own"][0] == ("RequestParser._parse_batch (jshost/resp.py:459)", 40.0)


def test_fold_of_nothing() -> None:
    assert fold("") == {"samples": 0, "idle_samples": 0, "layers": {}, "top_own": []}


def test_rust_binding_frames_are_the_boundary_not_quickjs() -> None:
    raw = ("Calls._call_locked (jshost/host/calls.py:98);"
           "pyo3::instance::Py$LT$T$GT$::call1 (jshost/_engine.cpython-311-x86_64-linux-gnu.so);"
           "unicode_decode_utf8 (libpython3.11.so.1.0) 3\n"
           "Calls._call_locked (jshost/host/calls.py:98);"
           "JS_CallInternal (jshost/_engine.cpython-311-x86_64-linux-gnu.so) 1")
    assert fold(raw)["layers"] == {"JS <-> Python boundary": 75.0,
                                   "JS engine (QuickJS, native)": 25.0}


def test_native_resp_frames_are_the_resp_layer_with_the_pyo3_calls_they_make() -> None:
    so = "(jshost/_engine.cpython-311-x86_64-linux-gnu.so)"
    raw = (f"Connection._process (jshost/connection.py:290);"
           f"_engine::resp::request::RequestReader::next {so} 2\n"
           f"Connection._process (jshost/connection.py:290);"
           f"_engine::resp::py::RequestParser::next_command {so};"
           f"pyo3::types::bytes::PyBytes::new {so};PyBytes_FromStringAndSize (libpython3.11.so) 1\n"
           f"Host._call_locked (jshost/host.py:308);_engine::convert::to_py {so};"
           f"pyo3::types::list::PyList::new {so} 1")
    assert fold(raw)["layers"] == {"RESP parsing and encoding": 75.0,
                                   "JS <-> Python boundary": 25.0}
