//! Encoding: typed replies → wire bytes for a RESP2 or RESP3 client, and requests for a Redis
//! server.
//!
//! ```text
//! value                    RESP2                   RESP3
//! bytes / bytearray        $3\r\nabc\r\n           same
//! str                      bulk of its UTF-8       same
//! int                      :42                     same
//! bool                     :1 / :0                 #t / #f
//! float                    bulk format_double      ,<format_double>
//! None                     $-1                     _
//! list / tuple             *n                      same
//! dict                     *2n k1 v1 ...           %n k1 v1 ...
//! SetReply / set           *n                      ~n
//! Push                     *n                      >n
//! Status                   +text                   same
//! ErrorReply               -text                   same
//! Verbatim                 bulk of the text        =<len+4>\r\nfmt:text
//! BigNumber                bulk of the digits      (digits
//! ```
//!
//! CR and LF in a Status, and CR, LF and NUL in an ErrorReply, become spaces. Nesting is walked
//! with an explicit stack, so any depth works. Exact types are tested first (the common case),
//! then subclasses in `jshost.resp`'s order (a subclass before its base).

use std::io::Write;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::iter::BoundDictIterator;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyIterator, PyList, PyMemoryView,
    PySet, PyString, PyTuple,
};

use super::Vocabulary;

/// Values at least this long go straight into a caller's bytearray, without a staging copy.
const BIG: usize = 64 * 1024;

thread_local! {
    /// The staging buffer, reused from one encoding to the next (an encoding that runs inside
    /// another, through Python code, simply gets a new one).
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Where encoded bytes go: a staging buffer, flushed into the caller's bytearray if any.
pub struct Sink<'a, 'py> {
    pub buf: Vec<u8>,
    target: Option<&'a Bound<'py, PyByteArray>>,
}

impl<'a, 'py> Sink<'a, 'py> {
    /// Encode into the staging buffer (`encode`; the caller copies `buf` out).
    pub fn new() -> Self {
        Self { buf: SCRATCH.take(), target: None }
    }

    /// Append to `target` (`encode_into`); call [`Sink::flush`] at the end, error or not.
    pub fn into_bytearray(target: &'a Bound<'py, PyByteArray>) -> Self {
        Self { buf: SCRATCH.take(), target: Some(target) }
    }

    /// A value's bytes: big ones go to the target directly.
    fn data(&mut self, data: &[u8]) -> PyResult<()> {
        match self.target {
            Some(target) if data.len() >= BIG => {
                self.flush()?;
                append(target, data)
            }
            _ => {
                self.buf.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Move the staged bytes to the target.
    pub fn flush(&mut self) -> PyResult<()> {
        if let Some(target) = self.target {
            if !self.buf.is_empty() {
                append(target, &self.buf)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn bulk(&mut self, data: &[u8]) -> PyResult<()> {
        self.header(b'$', data.len());
        self.data(data)?;
        self.buf.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// `<kind><n>\r\n`, e.g. `*3`, `$5`.
    fn header(&mut self, kind: u8, n: usize) {
        self.buf.push(kind);
        push_decimal(&mut self.buf, n as u64);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn line(&mut self, kind: u8, text: &[u8]) {
        self.buf.push(kind);
        self.buf.extend_from_slice(text);
        self.buf.extend_from_slice(b"\r\n");
    }
}

impl Drop for Sink<'_, '_> {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= BIG {
            buf.clear();
            SCRATCH.set(buf);
        }
    }
}

/// The decimal digits of `n` (without the formatting machinery of `write!`).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Append to a bytearray.
pub(crate) fn append(target: &Bound<'_, PyByteArray>, data: &[u8]) -> PyResult<()> {
    let old = target.len();
    target.resize(old + data.len())?;
    // SAFETY: the GIL is held and no Python code runs between the resize and the copy, so
    // nothing else can resize the bytearray meanwhile; the slice is dropped at once.
    unsafe { target.as_bytes_mut()[old..].copy_from_slice(data) };
    Ok(())
}

/// An aggregate being encoded: what yields its next element.
enum Frame<'py> {
    List(Bound<'py, PyList>, usize),
    Tuple(Bound<'py, PyTuple>, usize),
    /// A dict: keys and values in turn (the value waits in the option).
    Dict(BoundDictIterator<'py>, Option<Bound<'py, PyAny>>),
    Iter(Bound<'py, PyIterator>),
    /// `chain.from_iterable(value.items())` of a dict subclass.
    Chain(Bound<'py, PyIterator>, Option<Bound<'py, PyIterator>>),
}

impl<'py> Frame<'py> {
    fn next(&mut self) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self {
            Frame::List(list, i) => {
                if *i < list.len() {
                    *i += 1;
                    return list.get_item(*i - 1).map(Some);
                }
                Ok(None)
            }
            Frame::Tuple(tuple, i) => {
                if *i < tuple.len() {
                    *i += 1;
                    return tuple.get_item(*i - 1).map(Some);
                }
                Ok(None)
            }
            Frame::Dict(items, value) => {
                if let Some(value) = value.take() {
                    return Ok(Some(value));
                }
                Ok(items.next().map(|(k, v)| {
                    *value = Some(v);
                    k
                }))
            }
            Frame::Iter(iter) => iter.next().transpose(),
            Frame::Chain(items, inner) => loop {
                if let Some(current) = inner {
                    if let Some(element) = current.next() {
                        return element.map(Some);
                    }
                }
                match items.next() {
                    Some(item) => *inner = Some(item?.try_iter()?),
                    None => return Ok(None),
                }
            },
        }
    }
}

/// Encode `value` for a RESP2 (`resp3` false) or RESP3 client.
pub fn encode<'py>(
    v: &Vocabulary,
    value: &Bound<'py, PyAny>,
    resp3: bool,
    sink: &mut Sink<'_, 'py>,
) -> PyResult<()> {
    let mut stack: Vec<Frame<'py>> = Vec::new();
    let mut value = value.clone();
    loop {
        encode_one(v, &value, resp3, sink, &mut stack)?;
        // Next value: continue the innermost unfinished aggregate.
        loop {
            let Some(frame) = stack.last_mut() else {
                return Ok(());
            };
            match frame.next()? {
                Some(next) => {
                    value = next;
                    break;
                }
                None => {
                    stack.pop();
                }
            }
        }
    }
}

fn encode_one<'py>(
    v: &Vocabulary,
    value: &Bound<'py, PyAny>,
    resp3: bool,
    sink: &mut Sink<'_, 'py>,
    stack: &mut Vec<Frame<'py>>,
) -> PyResult<()> {
    let py = value.py();
    if let Ok(data) = value.cast_exact::<PyBytes>() {
        sink.bulk(data.as_bytes())
    } else if value.is_exact_instance_of::<PyInt>() {
        int(sink, value)
    } else if let Ok(text) = value.cast_exact::<PyString>() {
        sink.bulk(&utf8(text)?)
    } else if let Ok(list) = value.cast_exact::<PyList>() {
        sink.header(b'*', list.len());
        if !list.is_empty() {
            stack.push(Frame::List(list.clone(), 0));
        }
        Ok(())
    } else if let Ok(tuple) = value.cast_exact::<PyTuple>() {
        sink.header(b'*', tuple.len());
        if !tuple.is_empty() {
            stack.push(Frame::Tuple(tuple.clone(), 0));
        }
        Ok(())
    } else if value.is_none() {
        sink.buf.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
        Ok(())
    } else if value.get_type().is(v.status.bind(py)) {
        sink.line(b'+', &status_text(value.cast::<PyBytes>()?.as_bytes()));
        Ok(())
    } else if let Ok(map) = value.cast_exact::<PyDict>() {
        dict_header(sink, map.len(), resp3);
        if !map.is_empty() {
            stack.push(Frame::Dict(map.iter(), None));
        }
        Ok(())
    } else {
        encode_other(v, value, resp3, sink, stack)
    }
}

/// The less common types (subclasses are tested before their bases).
fn encode_other<'py>(
    v: &Vocabulary,
    value: &Bound<'py, PyAny>,
    resp3: bool,
    sink: &mut Sink<'_, 'py>,
    stack: &mut Vec<Frame<'py>>,
) -> PyResult<()> {
    let py = value.py();
    let is = |t: &Py<PyAny>| value.is_instance(t.bind(py));
    if let Ok(flag) = value.cast::<PyBool>() {
        let text: &[u8] = match (resp3, flag.is_true()) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        };
        sink.buf.extend_from_slice(text);
    } else if let Ok(x) = value.cast::<PyFloat>() {
        let mut text = Vec::with_capacity(24);
        format_double(py, x.value(), &mut text)?;
        if resp3 {
            sink.line(b',', &text);
        } else {
            sink.bulk(&text)?;
        }
    } else if is(&v.error_reply)? {
        sink.line(b'-', &error_text(&utf8(value.cast::<PyString>()?)?));
    } else if is(&v.big_number)? {
        let digits = ascii(value.cast::<PyString>()?)?;
        if resp3 {
            sink.line(b'(', &digits);
        } else {
            sink.bulk(&digits)?;
        }
    } else if is(&v.verbatim)? {
        let text = value.cast::<PyBytes>()?.as_bytes();
        if resp3 {
            let format = value.getattr("format")?;
            let fmt = format.call_method0("encode")?;
            let fmt = fmt.cast::<PyBytes>()?.as_bytes();
            if fmt.len() != 3 {
                let message = format!("verbatim format must be 3 bytes, got {}", format.repr()?);
                return Err(PyValueError::new_err(message));
            }
            write!(sink.buf, "={}\r\n", text.len() + 4).expect("writing to a Vec");
            sink.buf.extend_from_slice(fmt);
            sink.buf.push(b':');
            sink.data(text)?;
            sink.buf.extend_from_slice(b"\r\n");
        } else {
            sink.bulk(text)?;
        }
    } else if is(&v.status)? {
        sink.line(b'+', &status_text(value.cast::<PyBytes>()?.as_bytes()));
    } else if value.is_instance_of::<PyBytes>()
        || value.is_instance_of::<PyByteArray>()
        || value.is_instance_of::<PyMemoryView>()
    {
        let data = py.get_type::<PyBytes>().call1((value,))?;
        sink.bulk(data.cast::<PyBytes>()?.as_bytes())?;
    } else if is(&v.set_reply)? || value.is_instance_of::<PySet>() || value.is_instance_of::<PyFrozenSet>() {
        sink.header(if resp3 { b'~' } else { b'*' }, value.len()?);
        iterate(value, stack)?;
    } else if is(&v.push)? {
        sink.header(if resp3 { b'>' } else { b'*' }, value.len()?);
        iterate(value, stack)?;
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        sink.header(b'*', value.len()?);
        iterate(value, stack)?;
    } else if value.is_instance_of::<PyDict>() {
        dict_header(sink, value.len()?, resp3);
        if value.len()? > 0 {
            stack.push(Frame::Chain(value.call_method0("items")?.try_iter()?, None));
        }
    } else if value.is_instance_of::<PyInt>() {
        int(sink, value)?;
    } else if let Ok(text) = value.cast::<PyString>() {
        sink.bulk(&utf8(text)?)?;
    } else {
        let name = value.get_type().name()?;
        return Err(PyTypeError::new_err(format!("cannot encode {name} as a RESP reply")));
    }
    Ok(())
}

/// Walk a non-empty aggregate's elements next.
fn iterate<'py>(value: &Bound<'py, PyAny>, stack: &mut Vec<Frame<'py>>) -> PyResult<()> {
    if value.len()? > 0 {
        stack.push(Frame::Iter(value.try_iter()?));
    }
    Ok(())
}

fn dict_header(sink: &mut Sink<'_, '_>, n: usize, resp3: bool) {
    if resp3 {
        sink.header(b'%', n);
    } else {
        sink.header(b'*', 2 * n);
    }
}

/// `:<n>`, for an int of any size.
fn int(sink: &mut Sink<'_, '_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    match value.extract::<i64>() {
        Ok(n) => {
            sink.buf.push(b':');
            if n < 0 {
                sink.buf.push(b'-');
            }
            push_decimal(&mut sink.buf, n.unsigned_abs());
            sink.buf.extend_from_slice(b"\r\n");
        }
        Err(_) => {
            // Bigger than 64 bits: its decimal digits, as `b"%d" % value` gives them.
            let digits = value.py().get_type::<PyInt>().getattr("__repr__")?.call1((value,))?;
            sink.line(b':', digits.cast::<PyString>()?.to_str()?.as_bytes());
        }
    }
    Ok(())
}

/// A str's UTF-8; lone surrogates from surrogateescape give back their raw byte, others are
/// replaced (possible in JS strings).
pub fn utf8<'a>(text: &'a Bound<'_, PyString>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(s) = text.to_str() {
        return Ok(std::borrow::Cow::Borrowed(s.as_bytes()));
    }
    let encode = text.py().get_type::<PyString>().getattr("encode")?;
    let data = match encode.call1((text, "utf-8", "surrogateescape")) {
        Ok(data) => data,
        Err(err) if err.is_instance_of::<pyo3::exceptions::PyUnicodeEncodeError>(text.py()) => {
            encode.call1((text, "utf-8", "replace"))?
        }
        Err(err) => return Err(err),
    };
    Ok(std::borrow::Cow::Owned(data.cast::<PyBytes>()?.as_bytes().to_vec()))
}

/// A str as ASCII bytes (a BigNumber's digits), or the UnicodeEncodeError `str.encode` raises.
fn ascii<'a>(text: &'a Bound<'_, PyString>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(s) = text.to_str() {
        if s.is_ascii() {
            return Ok(std::borrow::Cow::Borrowed(s.as_bytes()));
        }
    }
    let data = text.py().get_type::<PyString>().getattr("encode")?.call1((text, "ascii"))?;
    Ok(std::borrow::Cow::Owned(data.cast::<PyBytes>()?.as_bytes().to_vec()))
}

/// A CR or LF inside a simple string would corrupt the stream: they become spaces.
fn status_text(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    blank_out(text, |c| c == b'\r' || c == b'\n')
}

/// SPEC §0.3: every CR, LF and NUL in an error text becomes a space.
fn error_text(text: &[u8]) -> Vec<u8> {
    blank_out(text, |c| c == b'\r' || c == b'\n' || c == 0).into_owned()
}

fn blank_out(text: &[u8], bad: impl Fn(u8) -> bool) -> std::borrow::Cow<'_, [u8]> {
    if !text.iter().any(|&c| bad(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.iter().map(|&c| if bad(c) { b' ' } else { c }).collect())
}

/// A request for a Redis server: `*<n>\r\n` then `$<len>\r\n<arg>\r\n` each. str is sent as
/// UTF-8, int as its decimal digits, float with `repr` (Redis parses it); bool is refused.
pub fn encode_command(args: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    let py = args.py();
    out.push(b'*');
    push_decimal(out, args.len()? as u64);
    out.extend_from_slice(b"\r\n");
    let mut arg_bulk = |data: &[u8]| {
        out.push(b'$');
        push_decimal(out, data.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    };
    for arg in args.try_iter()? {
        let arg = arg?;
        if let Ok(data) = arg.cast_exact::<PyBytes>() {
            arg_bulk(data.as_bytes());
        } else if let Ok(text) = arg.cast::<PyString>() {
            arg_bulk(&utf8(text)?);
        } else if arg.is_instance_of::<PyBytes>()
            || arg.is_instance_of::<PyByteArray>()
            || arg.is_instance_of::<PyMemoryView>()
        {
            let data = py.get_type::<PyBytes>().call1((&arg,))?;
            arg_bulk(data.cast::<PyBytes>()?.as_bytes());
        } else if arg.is_instance_of::<PyBool>() {
            // Ambiguous (1/0? true/false?): refused, as redis-py does.
            return Err(PyTypeError::new_err("cannot send a bool as a command argument"));
        } else if arg.is_exact_instance_of::<PyInt>() && arg.extract::<i64>().is_ok() {
            let mut digits = Vec::with_capacity(20);
            write!(digits, "{}", arg.extract::<i64>()?).expect("writing to a Vec");
            arg_bulk(&digits);
        } else if arg.is_instance_of::<PyInt>() || arg.is_instance_of::<PyFloat>() {
            arg_bulk(arg.repr()?.to_str()?.as_bytes());
        } else {
            let name = arg.get_type().name()?;
            return Err(PyTypeError::new_err(format!("cannot send {name} as a command argument")));
        }
    }
    Ok(())
}

/// Format a double like Redis 7.2 `d2string` (RESP3 `,` and RESP2 bulk doubles).
///
/// * `nan`, `inf`, `-inf`, `-0`, `0`.
/// * Integral values with `-2**62 <= x <= 2**62` print as integers (`double2ll` accepts
///   `[-(LLONG_MAX/2), LLONG_MAX/2]`, which as doubles is exactly `±2**62`).
/// * Anything else: the shortest round-tripping digits (Python's `repr`, ties to even; Redis
///   uses Grisu2, which agrees except in rare cases) laid out by fpconv's `emit_digits`, with
///   `K` the power of ten of the last digit and `X` that of the first:
///   - `K >= 0` and `K < 8`: integer with `K` zeros (`2**63` → `9223372036854776000`);
///   - `K < 0` and (`K > -7` or `|X| < 4`): plain decimal (`0.00001`, `123456.789`);
///   - otherwise `d.ddde±X`, exponent not padded (`1e+21`, `1.5e-7`, `5e-324`).
pub fn format_double(py: Python<'_>, x: f64, out: &mut Vec<u8>) -> PyResult<()> {
    const TWO_POW_62: f64 = 4_611_686_018_427_387_904.0;
    if x.is_nan() {
        out.extend_from_slice(b"nan");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"inf" } else { b"-inf" });
    } else if x == 0.0 {
        out.extend_from_slice(if x.is_sign_negative() { b"-0" } else { b"0" });
    } else if (-TWO_POW_62..=TWO_POW_62).contains(&x) && x.fract() == 0.0 {
        write!(out, "{}", x as i64).expect("writing to a Vec");
    } else {
        emit_digits(&shortest_repr(py, x)?, out);
    }
    Ok(())
}

/// Python's `repr(x)` (e.g. `-1.5e-07`, `123.456`, `1e+16`): the shortest digits that read
/// back as `x`, ties broken to even (Rust's own shortest formatting breaks them otherwise).
fn shortest_repr(py: Python<'_>, x: f64) -> PyResult<Vec<u8>> {
    // SAFETY: PyOS_double_to_string returns a NUL-terminated string allocated with
    // PyMem_Malloc (or NULL with an exception set); it is read once, then freed with PyMem_Free
    // while the GIL is held.
    unsafe {
        let p = pyo3::ffi::PyOS_double_to_string(x, b'r' as std::ffi::c_char, 0, 0, std::ptr::null_mut());
        if p.is_null() {
            return Err(PyErr::fetch(py));
        }
        let text = std::ffi::CStr::from_ptr(p).to_bytes().to_vec();
        pyo3::ffi::PyMem_Free(p.cast());
        Ok(text)
    }
}

/// Lay out a `repr` of a finite, non-zero double as fpconv's `emit_digits` does.
fn emit_digits(text: &[u8], out: &mut Vec<u8>) {
    let (sign, text) = match text.strip_prefix(b"-") {
        Some(rest) => (&b"-"[..], rest),
        None => (&b""[..], text),
    };
    let (mantissa, exponent) = match text.iter().position(|&c| c == b'e') {
        Some(e) => (
            &text[..e],
            std::str::from_utf8(&text[e + 1..]).expect("ASCII").parse::<i64>().expect("an exponent"),
        ),
        None => (text, 0),
    };
    let (whole, fraction) = match mantissa.iter().position(|&c| c == b'.') {
        Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
        None => (mantissa, &b""[..]),
    };
    let all: Vec<u8> = whole.iter().chain(fraction).copied().skip_while(|&c| c == b'0').collect();
    let significant = all.len() - all.iter().rev().take_while(|&&c| c == b'0').count();
    let digits = &all[..significant];
    // K: the power of ten of the last digit; X: that of the first.
    let k = exponent - fraction.len() as i64 + (all.len() - significant) as i64;
    let nd = digits.len() as i64;
    let x10 = k + nd - 1;
    out.extend_from_slice(sign);
    if k >= 0 && x10.abs() < nd + 7 {
        out.extend_from_slice(digits);
        out.resize(out.len() + k as usize, b'0');
    } else if k < 0 && (k > -7 || x10.abs() < 4) {
        let offset = nd + k;
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-offset) as usize, b'0');
            out.extend_from_slice(digits);
        } else {
            let (whole, fraction) = digits.split_at(offset as usize);
            out.extend_from_slice(whole);
            out.push(b'.');
            out.extend_from_slice(fraction);
        }
    } else {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        write!(out, "e{}{}", if x10 < 0 { '-' } else { '+' }, x10.abs()).expect("writing to a Vec");
    }
}

#[cfg(test)]
mod tests {
    use super::emit_digits;

    fn emit(repr: &str) -> String {
        let mut out = Vec::new();
        emit_digits(repr.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_laid_out_as_redis_prints_them() {
        for (repr, text) in [
            ("0.1", "0.1"),
            ("1e+21", "1e+21"),
            ("1.5e-07", "1.5e-7"),
            ("1e-06", "0.000001"),
            ("12345.6789012", "1.23456789012e+4"),
            ("4.611686018427389e+18", "4611686018427389000"),
            ("9.223372036854776e+18", "9223372036854776000"),
            ("5e-324", "5e-324"),
            ("-2.5e-10", "-2.5e-10"),
            ("123456.789", "123456.789"),
        ] {
            assert_eq!(emit(repr), text);
        }
    }
}
