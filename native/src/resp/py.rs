//! The Python face of the RESP layer: `RequestParser`, `ReplyParser` and the functions that
//! `jshost/resp.py` re-exports under the same names.

use std::ops::Range;

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString};
use pyo3::PyTraverseError;

use super::encode::{self as enc, Sink};
use super::reply::{self, ReplyReader, MAX_REPLY_DEPTH};
use super::request::{self, Failure, Limits, LongBulk, Next, RequestReader};
use super::{configure, query_buffer_limit_exceeded, vocabulary};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RequestParser>()?;
    m.add_class::<ReplyParser>()?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(encode_into, m)?)?;
    m.add_function(wrap_pyfunction!(encode_command, m)?)?;
    m.add_function(wrap_pyfunction!(format_double, m)?)?;
    m.add_function(wrap_pyfunction!(split_args, m)?)?;
    m.add_function(wrap_pyfunction!(split_reply, m)?)?;
    m.add("PROTO_INLINE_MAX_SIZE", request::PROTO_INLINE_MAX_SIZE)?;
    m.add("PROTO_MAX_BULK_LEN", request::PROTO_MAX_BULK_LEN)?;
    m.add("MAX_MULTIBULK_LEN", request::MAX_MULTIBULK_LEN)?;
    m.add("CLIENT_QUERY_BUFFER_LIMIT", request::CLIENT_QUERY_BUFFER_LIMIT)?;
    m.add("UNAUTH_MAX_MULTIBULK_LEN", request::UNAUTH_MAX_MULTIBULK_LEN)?;
    m.add("UNAUTH_MAX_BULK_LEN", request::UNAUTH_MAX_BULK_LEN)?;
    m.add("CHECKED_BULK_LEN", request::CHECKED_BULK_LEN)?;
    m.add("MAX_REPLY_DEPTH", MAX_REPLY_DEPTH)?;
    Ok(())
}

/// Run `f` on the bytes of `data` (bytes, bytearray, or anything `bytes()` accepts).
fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        // SAFETY: no Python code runs while `f` reads the slice (it only copies or scans it),
        // so the bytearray cannot be resized or freed meanwhile.
        return Ok(f(unsafe { b.as_bytes() }));
    }
    let b = data.py().get_type::<PyBytes>().call1((data,))?;
    Ok(f(b.cast::<PyBytes>()?.as_bytes()))
}

/// Client bytes → commands, exactly like Redis 7 reads a query buffer.
///
/// ```text
/// parser.feed(data)
/// for argv in parser:                  # or: while (argv := parser.get_command()) is not None
///     dispatch(argv)                   # argv: list[bytes], never empty
/// commands = parser.feed_and_take(data, 100)   # or a whole read buffer at once
/// ```
///
/// Multibulk and inline requests are accepted, with Redis' limits, quirks and error texts
/// (see `jshost.resp`). `ProtocolError` is raised when the bad command is reached, after all
/// the commands before it were returned, and again on every later call. `feed` raises
/// `QueryBufferLimitExceeded` when the bytes held for commands not returned yet (unparsed
/// data plus the consumed part of a partly read command) exceed `query_buffer_limit`.
///
/// While `unauthenticated` is set (the owner keeps it in step with AUTH), Redis'
/// pre-authentication limits apply: a multibulk count over 10, a bulk over 16384 bytes are
/// protocol errors as soon as their header is read.
///
/// `check_bulk(argv_so_far, length)`, if set, is asked about each bulk over 64 KiB whose header
/// is read while the bulk is not wholly buffered: a text (str) it returns is raised as a
/// protocol error there, before the bulk is buffered; an exception it raises propagates (and
/// the next call asks again).
#[pyclass(subclass, module = "jshost._engine.resp")]
pub struct RequestParser {
    reader: RequestReader,
    ranges: Vec<Range<usize>>,
    /// The owner's `check_bulk` callable, or None.
    check_bulk: Option<Py<PyAny>>,
}

/// A list of `bytes`: `earlier`, then these ranges of `data`.
fn argv<'py>(
    py: Python<'py>,
    earlier: &[Vec<u8>],
    data: &[u8],
    ranges: &[Range<usize>],
) -> PyResult<Bound<'py, PyList>> {
    let now = ranges.iter().map(|r| PyBytes::new(py, &data[r.clone()]));
    if earlier.is_empty() {
        return PyList::new(py, now);
    }
    let mut all: Vec<_> = earlier.iter().map(|a| PyBytes::new(py, a)).collect();
    all.extend(now);
    PyList::new(py, all)
}

impl RequestParser {
    fn next_command<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.next_with(py, |earlier, data, ranges| argv(py, earlier, data, ranges))
    }

    /// The next command's arguments as owned bytes (the native call path, `crate::fastpath`).
    pub(crate) fn next_args(&mut self, py: Python<'_>) -> PyResult<Option<Vec<Vec<u8>>>> {
        self.next_with(py, |earlier, data, ranges| {
            let mut args = earlier.to_vec();
            args.extend(ranges.iter().map(|r| data[r.clone()].to_vec()));
            Ok(args)
        })
    }

    /// Parse the next command and hand its parts to `make`.
    fn next_with<T>(
        &mut self,
        py: Python<'_>,
        make: impl FnOnce(&[Vec<u8>], &[u8], &[Range<usize>]) -> PyResult<T>,
    ) -> PyResult<Option<T>> {
        let hook = self.check_bulk.as_ref().map(|hook| hook.bind(py));
        // Asked only on the slow path: a long bulk not wholly buffered.
        let mut check = |bulk: LongBulk<'_>| -> PyResult<Option<String>> {
            let Some(hook) = hook else { return Ok(None) };
            let argv = argv(py, bulk.earlier, bulk.data, bulk.ranges)?;
            hook.call1((argv, bulk.length))?.extract()
        };
        match self.reader.next(&mut self.ranges, &mut check) {
            Ok(Next::Command(earlier)) => Ok(Some(make(&earlier, &self.reader.input.buf, &self.ranges)?)),
            Ok(Next::NeedData) => Ok(None),
            Err(Failure::Protocol(e)) => Err(e.to_pyerr(py)),
            Err(Failure::Check(e)) => Err(e),
        }
    }
}

#[pymethods]
impl RequestParser {
    #[new]
    #[pyo3(signature = (*, max_bulk_len=request::PROTO_MAX_BULK_LEN,
                        max_multibulk_len=request::MAX_MULTIBULK_LEN,
                        max_inline_size=request::PROTO_INLINE_MAX_SIZE,
                        query_buffer_limit=request::CLIENT_QUERY_BUFFER_LIMIT,
                        unauthenticated=false))]
    fn new(
        max_bulk_len: i64,
        max_multibulk_len: i64,
        max_inline_size: usize,
        query_buffer_limit: usize,
        unauthenticated: bool,
    ) -> Self {
        let limits = Limits { max_bulk_len, max_multibulk_len, max_inline_size, query_buffer_limit };
        let reader = RequestReader::new(limits, unauthenticated);
        Self { reader, ranges: Vec::new(), check_bulk: None }
    }

    // The hook may refer back to the parser's owner (a bound method of the connection):
    // the garbage collector must see it to free such a cycle.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.check_bulk)
    }

    fn __clear__(&mut self) {
        self.check_bulk = None;
    }

    /// Append received bytes (copied); raise `QueryBufferLimitExceeded` past the limit.
    fn feed(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let reader = &mut self.reader;
        with_bytes(data, |d| reader.feed(d))?.map_err(|held| {
            query_buffer_limit_exceeded(data.py(), held, self.reader.limits.query_buffer_limit)
        })
    }

    /// The next complete command, or None if more data is needed.
    fn get_command<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.next_command(py)
    }

    /// Iterate over the complete commands buffered so far (`iter(get_command, None)`).
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let builtins = slf.py().import("builtins")?;
        builtins.getattr("iter")?.call1((slf.getattr("get_command")?, slf.py().None()))
    }

    /// Up to `max_commands` complete commands (one while not authenticated, so that an AUTH
    /// is run before the next command is read). A protocol error after some commands is
    /// raised by the next call, as `get_command` would; an exception of `check_bulk` after
    /// some commands is left to the next call too (which asks it again).
    fn take<'py>(&mut self, py: Python<'py>, max_commands: usize) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let max = if self.reader.unauthenticated { max_commands.min(1) } else { max_commands };
        while out.len() < max {
            match self.next_command(py) {
                Ok(Some(command)) => out.append(command)?,
                Ok(None) => break,
                Err(err) if out.is_empty() => return Err(err),
                Err(_) => break, // met again by the next call
            }
        }
        Ok(out)
    }

    /// `feed(data)` then `take(max_commands)`: a whole read buffer in one call.
    fn feed_and_take<'py>(
        &mut self,
        data: &Bound<'py, PyAny>,
        max_commands: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        self.feed(data)?;
        self.take(data.py(), max_commands)
    }

    #[getter]
    fn max_bulk_len(&self) -> i64 {
        self.reader.limits.max_bulk_len
    }
    #[setter]
    fn set_max_bulk_len(&mut self, value: i64) {
        self.reader.limits.max_bulk_len = value;
    }
    #[getter]
    fn max_multibulk_len(&self) -> i64 {
        self.reader.limits.max_multibulk_len
    }
    #[setter]
    fn set_max_multibulk_len(&mut self, value: i64) {
        self.reader.limits.max_multibulk_len = value;
    }
    #[getter]
    fn max_inline_size(&self) -> usize {
        self.reader.limits.max_inline_size
    }
    #[setter]
    fn set_max_inline_size(&mut self, value: usize) {
        self.reader.limits.max_inline_size = value;
    }
    #[getter]
    fn query_buffer_limit(&self) -> usize {
        self.reader.limits.query_buffer_limit
    }
    #[setter]
    fn set_query_buffer_limit(&mut self, value: usize) {
        self.reader.limits.query_buffer_limit = value;
    }
    /// Whether Redis' pre-authentication limits apply (the client has not authenticated).
    #[getter]
    fn unauthenticated(&self) -> bool {
        self.reader.unauthenticated
    }
    #[setter]
    fn set_unauthenticated(&mut self, value: bool) {
        self.reader.unauthenticated = value;
    }
    /// `check_bulk(argv_so_far, length) -> str | None`, asked about long bulks by their
    /// header (see the class), or None.
    #[getter]
    fn check_bulk(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.check_bulk.as_ref().map(|hook| hook.clone_ref(py))
    }
    #[setter]
    fn set_check_bulk(&mut self, value: Option<Py<PyAny>>) {
        self.check_bulk = value;
    }
    /// Bytes held for commands not returned yet (what the query buffer limit counts).
    #[getter]
    fn held(&self) -> usize {
        self.reader.held()
    }

    // Internals, for tests: the joined buffer, the parse position, the bytes waiting unjoined,
    // the bytes consumed by a partly read command.
    #[getter]
    fn _buf<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.reader.input.buf)
    }
    #[getter]
    fn _pos(&self) -> usize {
        self.reader.input.pos
    }
    #[getter]
    fn _chunks_len(&self) -> usize {
        self.reader.input.pending_len()
    }
    #[getter]
    fn _partial(&self) -> usize {
        self.reader.partial_len
    }
}

/// Bytes from a Redis server → typed replies (`jshost.replies`), RESP2 and RESP3.
///
/// `get_reply` returns the next complete reply or `NEED_DATA`; `get_reply_with_raw` returns
/// `(value, raw bytes of the whole top-level reply)` or None. Protocol errors (and more than
/// `max_depth` nested aggregates) raise `ProtocolError`, then again on every later call.
#[pyclass(subclass, module = "jshost._engine.resp")]
pub struct ReplyParser {
    reader: ReplyReader,
}

#[pymethods]
impl ReplyParser {
    #[new]
    #[pyo3(signature = (*, max_depth=MAX_REPLY_DEPTH))]
    fn new(max_depth: usize) -> Self {
        Self { reader: ReplyReader::new(max_depth) }
    }

    /// Append received bytes (copied).
    fn feed(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let input = &mut self.reader.input;
        with_bytes(data, |d| input.feed(d))
    }

    /// The next complete reply, or `NEED_DATA`.
    fn get_reply(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = vocabulary(py)?;
        match self.reader.next(py, v)? {
            Some(value) => {
                self.reader.input.start = self.reader.input.pos;
                Ok(value)
            }
            None => Ok(v.need_data.clone_ref(py)),
        }
    }

    /// `(value, raw bytes of the whole top-level reply)`, or None if it is incomplete.
    fn get_reply_with_raw<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<Option<(Py<PyAny>, Bound<'py, PyBytes>)>> {
        let v = vocabulary(py)?;
        let Some(value) = self.reader.next(py, v)? else {
            return Ok(None);
        };
        let input = &mut self.reader.input;
        let raw = PyBytes::new(py, &input.buf[input.start..input.pos]);
        input.start = input.pos;
        Ok(Some((value, raw)))
    }

    #[getter]
    fn max_depth(&self) -> usize {
        self.reader.max_depth
    }
    #[setter]
    fn set_max_depth(&mut self, value: usize) {
        self.reader.max_depth = value;
    }

    // Internals, for tests (see RequestParser).
    #[getter]
    fn _buf<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.reader.input.buf)
    }
    #[getter]
    fn _pos(&self) -> usize {
        self.reader.input.pos
    }
    #[getter]
    fn _chunks_len(&self) -> usize {
        self.reader.input.pending_len()
    }
}

/// Encode a typed reply for a client speaking RESP `protocol` (2 or 3).
#[pyfunction]
#[pyo3(signature = (value, protocol=2))]
fn encode<'py>(value: &Bound<'py, PyAny>, protocol: i64) -> PyResult<Bound<'py, PyBytes>> {
    let mut sink = Sink::new();
    enc::encode(vocabulary(value.py())?, value, protocol >= 3, &mut sink)?;
    Ok(PyBytes::new(value.py(), &sink.buf))
}

/// Append the encoding of `value` to `out` (a bytearray); on an error, what was encoded
/// before it stays appended.
#[pyfunction]
#[pyo3(signature = (out, value, protocol=2))]
fn encode_into(out: &Bound<'_, PyByteArray>, value: &Bound<'_, PyAny>, protocol: i64) -> PyResult<()> {
    let mut sink = Sink::into_bytearray(out);
    let result = enc::encode(vocabulary(value.py())?, value, protocol >= 3, &mut sink);
    sink.flush()?;
    result
}

/// Encode a request for a Redis server.
#[pyfunction]
fn encode_command<'py>(args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(64);
    enc::encode_command(args, &mut out)?;
    Ok(PyBytes::new(args.py(), &out))
}

/// Format a double like Redis 7.2 `d2string`.
#[pyfunction]
fn format_double(py: Python<'_>, x: f64) -> PyResult<Bound<'_, PyString>> {
    let mut out = Vec::with_capacity(24);
    enc::format_double(py, x, &mut out)?;
    Ok(PyString::new(py, std::str::from_utf8(&out).expect("ASCII")))
}

/// Split an inline request line like Redis `sdssplitargs`; None for unbalanced quotes.
#[pyfunction]
fn split_args<'py>(line: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyList>>> {
    let py = line.py();
    match with_bytes(line, request::split_args)? {
        Some(args) => Ok(Some(PyList::new(py, args.iter().map(|a| PyBytes::new(py, a)))?)),
        None => Ok(None),
    }
}

/// The offset just past the complete reply starting at `buf[pos]`, or None.
#[pyfunction]
#[pyo3(signature = (buf, pos=0))]
fn split_reply(buf: &Bound<'_, PyAny>, pos: usize) -> PyResult<Option<usize>> {
    with_bytes(buf, |b| reply::split_reply(b, pos))?.map_err(|e| e.to_pyerr(buf.py()))
}
