//! Replies: bytes from a Redis server → typed replies (`jshost.replies`), RESP2 and RESP3.
//!
//! ```text
//! +OK          Status            -ERR x / !<n>\r\n..   ErrorReply (returned, not raised)
//! :42          int               $<n>\r\n<bytes> / $-1  bytes / None
//! *<n> / *-1   list / None       _                      None
//! ,3.5         float             #t / #f                bool
//! (123…        BigNumber         =<n>\r\ntxt:<text>     Verbatim (.format = "txt")
//! %<n>         dict              ~<n>                   SetReply
//! ><n>         Push              |<n>                   attribute: parsed and dropped
//! ```
//!
//! Map keys that are aggregates on the wire become tuples (Python dict keys must be hashable);
//! the value after an attribute takes its place (the raw bytes keep it). Parsing is iterative
//! (an explicit stack of open aggregates, so nesting depth costs no native stack) and
//! resumable: partial input gives "need data" and later calls continue where it stopped. More
//! than `max_depth` nested aggregates is a protocol error; every protocol error is sticky.

use memchr::memmem;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;

use super::buffer::InputBuffer;
use super::{RespError, Vocabulary};

/// Default depth limit of nested aggregates.
pub const MAX_REPLY_DEPTH: usize = 1000;

/// An aggregate being read.
struct Frame {
    items: Vec<Py<PyAny>>,
    /// Items it holds when complete (twice the count for a map or an attribute).
    total: u64,
    /// Its type byte.
    kind: u8,
    /// Inside a map key: aggregates become tuples, as `jshost.resp`'s `_hashable` made them.
    in_key: bool,
}

/// A failure while parsing: bad data (sticky), or a Python error creating a value.
enum Fail {
    Resp(RespError),
    Py(PyErr),
}

impl From<RespError> for Fail {
    fn from(e: RespError) -> Self {
        Fail::Resp(e)
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

/// The reply state machine: a buffer, the open aggregates, the first error met.
pub struct ReplyReader {
    pub input: InputBuffer,
    stack: Vec<Frame>,
    pub max_depth: usize,
    error: Option<RespError>,
}

impl ReplyReader {
    pub fn new(max_depth: usize) -> Self {
        Self { input: InputBuffer::default(), stack: Vec::new(), max_depth, error: None }
    }

    /// The next complete reply (`self.input.start..self.input.pos` are its raw bytes), or None.
    pub fn next(&mut self, py: Python<'_>, v: &Vocabulary) -> PyResult<Option<Py<PyAny>>> {
        if let Some(error) = &self.error {
            return Err(error.to_pyerr(py));
        }
        if !self.input.ready() {
            return Ok(None);
        }
        match self.parse(py, v) {
            Ok(value) => Ok(value),
            Err(Fail::Py(err)) => Err(err),
            Err(Fail::Resp(error)) => {
                let err = error.to_pyerr(py);
                self.error = Some(error);
                Err(err)
            }
        }
    }

    fn parse(&mut self, py: Python<'_>, v: &Vocabulary) -> Result<Option<Py<PyAny>>, Fail> {
        let data: &[u8] = &self.input.buf;
        let end = data.len();
        let mut pos = self.input.pos;
        let crlf = memmem::Finder::new(b"\r\n");
        loop {
            let Some(nl) = crlf.find(&data[pos..]).map(|i| pos + i) else {
                self.input.pos = pos;
                self.input.need = end - pos + 1;
                return Ok(None);
            };
            let t = data[pos];
            let value = match t {
                b'$' | b'=' | b'!' => {
                    let n = reply_length(&data[pos + 1..nl])?;
                    if n < 0 {
                        if t != b'$' {
                            return Err(RespError::ReplyBadLength(data[pos..nl].to_vec()).into());
                        }
                        pos = nl + 2;
                        py.None()
                    } else {
                        let begin = nl + 2;
                        let stop = begin.saturating_add(n as usize);
                        if stop.saturating_add(2) > end {
                            self.input.pos = pos; // resume at the header: it is cheap to read again
                            self.input.need = stop.saturating_add(2) - pos;
                            return Ok(None);
                        }
                        if &data[stop..stop + 2] != b"\r\n" {
                            return Err(RespError::ReplyNoCrlf.into());
                        }
                        let text = &data[begin..stop];
                        pos = stop + 2;
                        match t {
                            b'$' => PyBytes::new(py, text).into_any().unbind(),
                            b'=' => verbatim(py, v, text)?,
                            _ => v.error_reply.call1(py, (decode_surrogateescape(py, text)?,))?,
                        }
                    }
                }
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    let header = &data[pos..nl];
                    let n = reply_length(&header[1..])?;
                    pos = nl + 2;
                    if n > 0 {
                        if self.stack.len() >= self.max_depth {
                            return Err(RespError::ReplyTooDeep(self.max_depth).into());
                        }
                        let n = n as u64;
                        let total = if t == b'%' || t == b'|' { n.saturating_mul(2) } else { n };
                        let in_key = self.in_key();
                        let items = Vec::with_capacity(total.min(1024) as usize);
                        self.stack.push(Frame { items, total, kind: t, in_key });
                        continue;
                    }
                    if t == b'|' && n == 0 {
                        continue;
                    }
                    if n == 0 {
                        empty(py, v, t, self.in_key())?
                    } else if t == b'*' {
                        py.None() // RESP2 null array *-1
                    } else {
                        return Err(RespError::ReplyBadLength(header.to_vec()).into());
                    }
                }
                _ => {
                    // (`nl == pos` when the type byte is the '\r' itself: a bad type.)
                    let value = line_value(py, v, t, &data[(pos + 1).min(nl)..nl])?;
                    pos = nl + 2;
                    value
                }
            };
            // Attach the value to the open aggregates, closing those that become complete.
            let mut value = value;
            loop {
                let Some(frame) = self.stack.last_mut() else {
                    self.input.pos = pos;
                    return Ok(Some(value));
                };
                frame.items.push(value);
                if (frame.items.len() as u64) < frame.total {
                    break;
                }
                let frame = self.stack.pop().expect("a frame was just used");
                if frame.kind == b'|' {
                    break; // dropped: the next value takes the attribute's place
                }
                value = close(py, v, frame)?;
            }
        }
    }

    /// Whether a value read now sits in a map key (or inside one).
    fn in_key(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|parent| parent.in_key || (parent.kind == b'%' && parent.items.len() % 2 == 0))
    }
}

/// A length in a header: digits or `-1`; -1 for a null, saturated when huge (such a value
/// never completes, as with Python's unbounded ints).
fn reply_length(s: &[u8]) -> Result<i64, RespError> {
    if s == b"-1" {
        return Ok(-1);
    }
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(RespError::ReplyBadLength(s.to_vec()));
    }
    Ok(s.iter().fold(0i64, |n, &d| n.saturating_mul(10).saturating_add(i64::from(d - b'0'))))
}

/// An integer line (`:` and `(`): digits with an optional `-`, any size.
fn reply_int<'py>(py: Python<'py>, s: &[u8], what: &'static str) -> Result<Bound<'py, PyAny>, Fail> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::ReplyBadValue(what, s.to_vec()).into());
    }
    if digits.len() <= 18 {
        let n = digits.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        let n = if digits.len() < s.len() { -n } else { n };
        return Ok(n.into_bound_py_any(py)?);
    }
    // Longer: Python's int() reads any size, leading zeros included.
    let text = std::str::from_utf8(s).expect("ASCII digits");
    Ok(py.get_type::<PyInt>().call1((text,))?)
}

/// A one-line reply (type byte `t`, text `line`).
fn line_value(py: Python<'_>, v: &Vocabulary, t: u8, line: &[u8]) -> Result<Py<PyAny>, Fail> {
    Ok(match t {
        b'+' => v.status.call1(py, (PyBytes::new(py, line),))?,
        b':' => reply_int(py, line, "integer")?.unbind(),
        b'-' => v.error_reply.call1(py, (decode_surrogateescape(py, line)?,))?,
        b'_' => {
            if !line.is_empty() {
                return Err(RespError::ReplyBadValue("null", line.to_vec()).into());
            }
            py.None()
        }
        b',' => double(py, line)?,
        b'#' => match line {
            b"t" => PyBool::new(py, true).to_owned().into_any().unbind(),
            b"f" => PyBool::new(py, false).to_owned().into_any().unbind(),
            _ => return Err(RespError::ReplyBadValue("boolean", line.to_vec()).into()),
        },
        b'(' => {
            reply_int(py, line, "big number")?;
            let digits = std::str::from_utf8(line).expect("ASCII digits");
            v.big_number.call1(py, (digits,))?
        }
        _ => return Err(RespError::ReplyBadType(t).into()),
    })
}

/// A double line (`inf`, `-inf`, `nan`, `1.5`, `1e+21` ...), read as Python's `float()` reads it.
fn double(py: Python<'_>, line: &[u8]) -> Result<Py<PyAny>, Fail> {
    // Rust reads a subset of what float() accepts (no blanks, no '_'), rounding the same way.
    let plain =
        line.len() <= 64 && line.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-'));
    if plain {
        if let Some(x) = std::str::from_utf8(line).ok().and_then(|s| s.parse::<f64>().ok()) {
            return Ok(PyFloat::new(py, x).into_any().unbind());
        }
    }
    match py.get_type::<PyFloat>().call1((PyBytes::new(py, line),)) {
        Ok(x) => Ok(x.unbind()),
        Err(_) => Err(RespError::ReplyBadValue("double", line.to_vec()).into()),
    }
}

/// `=<n>\r\nfmt:text`: a Verbatim, or a bad value when the `fmt:` prefix is missing.
fn verbatim(py: Python<'_>, v: &Vocabulary, text: &[u8]) -> Result<Py<PyAny>, Fail> {
    if text.len() < 4 || text[3] != b':' {
        return Err(RespError::ReplyBadValue("verbatim", text.to_vec()).into());
    }
    // The format as bytes.decode("ascii", "replace") reads it.
    let format: String =
        text[..3].iter().map(|&c| if c.is_ascii() { c as char } else { '\u{fffd}' }).collect();
    Ok(v.verbatim.call1(py, (PyBytes::new(py, &text[4..]), format))?)
}

/// Bytes as `str`, undecodable bytes as lone surrogates (so encoding gives them back).
pub fn decode_surrogateescape<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match std::str::from_utf8(text) {
        Ok(s) => Ok(PyString::new(py, s).into_any()),
        Err(_) => PyBytes::new(py, text).call_method1("decode", ("utf-8", "surrogateescape")),
    }
}

/// An empty aggregate (`*0`, `%0`, `~0`, `>0`); in a map key, an empty tuple.
fn empty(py: Python<'_>, v: &Vocabulary, t: u8, in_key: bool) -> PyResult<Py<PyAny>> {
    if in_key {
        return Ok(PyTuple::empty(py).into_any().unbind());
    }
    Ok(match t {
        b'*' => PyList::empty(py).into_any().unbind(),
        b'%' => PyDict::new(py).into_any().unbind(),
        b'~' => v.set_reply.call0(py)?,
        _ => v.push.call0(py)?,
    })
}

/// The value of a complete aggregate.
fn close(py: Python<'_>, v: &Vocabulary, frame: Frame) -> PyResult<Py<PyAny>> {
    if frame.kind == b'%' {
        let map = PyDict::new(py);
        let mut items = frame.items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            map.set_item(key, value)?;
        }
        if !frame.in_key {
            return Ok(map.into_any().unbind());
        }
        let pairs = map.iter().map(|(k, v)| PyTuple::new(py, [k, v])).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyTuple::new(py, pairs)?.into_any().unbind());
    }
    if frame.in_key {
        return Ok(PyTuple::new(py, frame.items)?.into_any().unbind());
    }
    let list = PyList::new(py, frame.items)?;
    Ok(match frame.kind {
        b'~' => v.set_reply.call1(py, (list,))?,
        b'>' => v.push.call1(py, (list,))?,
        _ => list.into_any().unbind(),
    })
}

/// The offset just past the complete reply starting at `buf[pos]`, or None if it is not all
/// there. Only counts elements (no values are built, no recursion), so a proxy can forward
/// `buf[pos..end]` unchanged.
pub fn split_reply(buf: &[u8], mut pos: usize) -> Result<Option<usize>, RespError> {
    let end = buf.len();
    let crlf = memmem::Finder::new(b"\r\n");
    let mut pending: u64 = 1; // elements still to read
    while pending > 0 {
        if pos >= end {
            return Ok(None);
        }
        let Some(nl) = crlf.find(&buf[pos..]).map(|i| pos + i) else {
            return Ok(None);
        };
        let t = buf[pos];
        match t {
            b'$' | b'=' | b'!' | b'*' | b'%' | b'~' | b'>' | b'|' => {
                let header = &buf[pos..nl];
                let n = reply_length(&header[1..])?;
                if n < 0 && t != b'$' && t != b'*' {
                    return Err(RespError::ReplyBadLength(header.to_vec())); // only $-1 and *-1 are nulls
                }
                if matches!(t, b'$' | b'=' | b'!') {
                    pos = if n < 0 { nl + 2 } else { nl.saturating_add(n as usize).saturating_add(4) };
                    if pos > end {
                        return Ok(None);
                    }
                    if n >= 0 && &buf[pos - 2..pos] != b"\r\n" {
                        return Err(RespError::ReplyNoCrlf);
                    }
                    pending -= 1;
                } else {
                    pos = nl + 2;
                    let n = n.max(0) as u64;
                    if t == b'|' {
                        // The value after the attribute still fills the slot.
                        pending = pending.saturating_add(n.saturating_mul(2));
                    } else if header[1] != b'-' {
                        pending = pending.saturating_add(if t == b'%' { n.saturating_mul(2) } else { n }) - 1;
                    } else {
                        pending -= 1;
                    }
                }
            }
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
                pos = nl + 2;
                pending -= 1;
            }
            _ => return Err(RespError::ReplyBadType(t)),
        }
    }
    Ok(Some(pos))
}
