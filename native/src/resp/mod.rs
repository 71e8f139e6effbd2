//! `jshost._engine.resp`: the RESP2/RESP3 protocol layer, sans-I/O (it never touches a socket).
//!
//! Python reaches it only through `jshost/resp.py`, which keeps the public names and hands this
//! module the Python vocabulary once, at import (`configure`): the reply marker types of
//! `jshost.replies`, the exception classes and the error texts of `jshost/errors.py` (their one
//! home). Three parts, each mirroring what a real Redis does, byte for byte:
//!
//! - [`request`]: client bytes → commands, exactly like Redis 7 reads a query buffer
//!   (`processMultibulkBuffer` / `processInlineBuffer`), with its limits and error texts;
//! - [`reply`]: bytes from a Redis server → typed replies (RESP2 and RESP3), and `split_reply`;
//! - [`encode`]: typed replies → wire bytes for a RESP2 or RESP3 client, and requests for a
//!   Redis server.
//!
//! Wire format reminder (every line ends with CRLF):
//!
//! ```text
//! request   *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n      or inline     SET k v\r\n
//! RESP2     +OK  -ERR text  :42  $5\r\nhello  $-1  *2 ...  *-1
//! RESP3     _  ,3.5  #t  (12345678901234567890  =7\r\ntxt:abc  %1 ...  ~2 ...  >3 ...  |1 ...
//! ```

mod buffer;
mod encode;
mod py;
mod reply;
mod request;

pub(crate) use py::RequestParser;

/// Append `data` to a bytearray (the native call path's replies).
pub(crate) fn append_bytes(target: &Bound<'_, pyo3::types::PyByteArray>, data: &[u8]) -> PyResult<()> {
    if data.is_empty() {
        return Ok(());
    }
    encode::append(target, data)
}

/// Encode a typed reply (`jshost.replies`) for a RESP2 or RESP3 client, appended to `out`.
pub(crate) fn encode_reply(value: &Bound<'_, PyAny>, resp3: bool, out: &mut Vec<u8>) -> PyResult<()> {
    let mut sink = encode::Sink::new();
    encode::encode(vocabulary(value.py())?, value, resp3, &mut sink)?;
    out.extend_from_slice(&sink.buf);
    Ok(())
}

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};

/// Add the `resp` submodule to `jshost._engine`.
pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "resp")?;
    py::register(&m)?;
    parent.add_submodule(&m)
}

/// The Python objects this module creates or raises, handed over once by `jshost.resp`.
pub struct Vocabulary {
    pub status: Py<PyAny>,
    pub error_reply: Py<PyAny>,
    pub set_reply: Py<PyAny>,
    pub push: Py<PyAny>,
    pub verbatim: Py<PyAny>,
    pub big_number: Py<PyAny>,
    pub protocol_error: Py<PyAny>,
    pub query_buffer_limit_exceeded: Py<PyAny>,
    pub need_data: Py<PyAny>,
    texts: Texts,
}

/// The error texts (templates for `str.format`), read off `jshost.errors.ProtocolErrors`.
struct Texts {
    invalid_multibulk_length: Py<PyAny>,
    invalid_bulk_length: Py<PyAny>,
    expected_dollar: Py<PyAny>,
    too_big_inline: Py<PyAny>,
    too_big_mbulk_count: Py<PyAny>,
    too_big_bulk_count: Py<PyAny>,
    unbalanced_quotes: Py<PyAny>,
    unauth_mbulk_count: Py<PyAny>,
    unauth_bulk_length: Py<PyAny>,
    query_buffer_limit: Py<PyAny>,
    reply_bad_type: Py<PyAny>,
    reply_bad_length: Py<PyAny>,
    reply_bad_value: Py<PyAny>,
    reply_no_crlf: Py<PyAny>,
    reply_too_deep: Py<PyAny>,
}

static VOCABULARY: PyOnceLock<Vocabulary> = PyOnceLock::new();

/// The vocabulary `jshost.resp` configured (it does so when it is imported).
pub fn vocabulary(py: Python<'_>) -> PyResult<&'static Vocabulary> {
    VOCABULARY.get(py).ok_or_else(|| {
        PyRuntimeError::new_err("jshost._engine.resp is used through jshost.resp (import it first)")
    })
}

/// Hand over the Python vocabulary (once; `jshost.resp` does it at import).
#[pyfunction]
#[pyo3(signature = (*, status, error_reply, set_reply, push, verbatim, big_number,
                    protocol_error, query_buffer_limit_exceeded, need_data, texts))]
#[allow(clippy::too_many_arguments)]
fn configure(
    py: Python<'_>,
    status: Py<PyAny>,
    error_reply: Py<PyAny>,
    set_reply: Py<PyAny>,
    push: Py<PyAny>,
    verbatim: Py<PyAny>,
    big_number: Py<PyAny>,
    protocol_error: Py<PyAny>,
    query_buffer_limit_exceeded: Py<PyAny>,
    need_data: Py<PyAny>,
    texts: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let text = |name: &str| -> PyResult<Py<PyAny>> {
        Ok(texts.getattr(name)?.cast_into::<PyString>()?.into_any().unbind())
    };
    let vocabulary = Vocabulary {
        status,
        error_reply,
        set_reply,
        push,
        verbatim,
        big_number,
        protocol_error,
        query_buffer_limit_exceeded,
        need_data,
        texts: Texts {
            invalid_multibulk_length: text("ERR_INVALID_MULTIBULK_LENGTH")?,
            invalid_bulk_length: text("ERR_INVALID_BULK_LENGTH")?,
            expected_dollar: text("ERR_EXPECTED_DOLLAR")?,
            too_big_inline: text("ERR_TOO_BIG_INLINE")?,
            too_big_mbulk_count: text("ERR_TOO_BIG_MBULK_COUNT")?,
            too_big_bulk_count: text("ERR_TOO_BIG_BULK_COUNT")?,
            unbalanced_quotes: text("ERR_UNBALANCED_QUOTES")?,
            unauth_mbulk_count: text("ERR_UNAUTH_MBULK_COUNT")?,
            unauth_bulk_length: text("ERR_UNAUTH_BULK_LENGTH")?,
            query_buffer_limit: text("MSG_QUERY_BUFFER_LIMIT")?,
            reply_bad_type: text("ERR_REPLY_BAD_TYPE")?,
            reply_bad_length: text("ERR_REPLY_BAD_LENGTH")?,
            reply_bad_value: text("ERR_REPLY_BAD_VALUE")?,
            reply_no_crlf: text("ERR_REPLY_NO_CRLF")?,
            reply_too_deep: text("ERR_REPLY_TOO_DEEP")?,
        },
    };
    VOCABULARY
        .set(py, vocabulary)
        .map_err(|_| PyRuntimeError::new_err("jshost._engine.resp is configured already"))
}

/// Malformed input. Each becomes a `ProtocolError` whose message is the text of
/// `jshost.errors.ProtocolErrors` it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespError {
    // Request side: Redis 7's replies to a malformed query buffer.
    InvalidMultibulkLength,
    InvalidBulkLength,
    /// The byte found where a bulk header's `$` should be.
    ExpectedDollar(u8),
    TooBigInline,
    TooBigMbulkCount,
    TooBigBulkCount,
    UnbalancedQuotes,
    UnauthMbulkCount,
    UnauthBulkLength,
    /// A long bulk the parser's owner refused by its header (its text).
    Refused(String),
    // Reply side: bad data from a Redis server.
    ReplyBadType(u8),
    ReplyBadLength(Vec<u8>),
    ReplyBadValue(&'static str, Vec<u8>),
    ReplyNoCrlf,
    ReplyTooDeep(usize),
}

impl RespError {
    /// The `ProtocolError` to raise.
    pub fn to_pyerr(&self, py: Python<'_>) -> PyErr {
        match self.message(py) {
            Ok(message) => match vocabulary(py).and_then(|v| v.protocol_error.bind(py).call1((message,))) {
                Ok(exc) => PyErr::from_value(exc),
                Err(err) => err,
            },
            Err(err) => err,
        }
    }

    fn message<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = &vocabulary(py)?.texts;
        let plain = |text: &Py<PyAny>| Ok(text.bind(py).clone());
        match self {
            Self::InvalidMultibulkLength => plain(&t.invalid_multibulk_length),
            Self::InvalidBulkLength => plain(&t.invalid_bulk_length),
            Self::ExpectedDollar(c) => {
                // Redis prints the raw byte with %c; surrogateescape makes `encode` send that byte.
                let c = PyBytes::new(py, &[*c]).call_method1("decode", ("utf-8", "surrogateescape"))?;
                t.expected_dollar.bind(py).call_method1("format", (c,))
            }
            Self::TooBigInline => plain(&t.too_big_inline),
            Self::TooBigMbulkCount => plain(&t.too_big_mbulk_count),
            Self::TooBigBulkCount => plain(&t.too_big_bulk_count),
            Self::UnbalancedQuotes => plain(&t.unbalanced_quotes),
            Self::UnauthMbulkCount => plain(&t.unauth_mbulk_count),
            Self::UnauthBulkLength => plain(&t.unauth_bulk_length),
            Self::Refused(text) => Ok(PyString::new(py, text).into_any()),
            Self::ReplyBadType(c) => t.reply_bad_type.bind(py).call_method1("format", (char::from(*c),)),
            Self::ReplyBadLength(s) => {
                t.reply_bad_length.bind(py).call_method1("format", (PyBytes::new(py, s),))
            }
            Self::ReplyBadValue(what, s) => {
                t.reply_bad_value.bind(py).call_method1("format", (*what, PyBytes::new(py, s)))
            }
            Self::ReplyNoCrlf => plain(&t.reply_no_crlf),
            Self::ReplyTooDeep(depth) => t.reply_too_deep.bind(py).call_method1("format", (*depth,)),
        }
    }
}

/// `QueryBufferLimitExceeded`: more than `limit` bytes held for commands not returned yet.
pub fn query_buffer_limit_exceeded(py: Python<'_>, held: usize, limit: usize) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let v = vocabulary(py)?;
        let message = v.texts.query_buffer_limit.bind(py).call_method1("format", (held, limit))?;
        Ok(PyErr::from_value(v.query_buffer_limit_exceeded.bind(py).call1((message,))?))
    };
    build().unwrap_or_else(|err| err)
}
