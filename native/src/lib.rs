//! `jshost._engine`: a thin, exact binding of QuickJS-ng for jshost.
//!
//! It knows nothing of RedisGears: runtimes with memory, stack and deadline limits, lossless
//! value conversion, handles to JS functions/promises/objects, jobs, and exceptions both ways.
//! The RedisGears rules live in Python (`jshost/`) and in the JS prelude.
//!
//! Every `unsafe` block carries a `// SAFETY:` note naming the rules it relies on (*live*,
//! *one thread*, *owned / borrowed*, *tag*: see "Safety" in `shared.rs`); `cargo clippy
//! --all-targets -- -D warnings -W clippy::undocumented_unsafe_blocks` checks that (`.ci/run`).
//!
//! `jshost._engine.resp` (module `resp`) is the RESP protocol layer: request framing, reply
//! parsing and reply encoding, reached through `jshost/resp.py`.

mod callbacks;
mod convert;
mod errors;
mod fastpath;
mod handles;
mod resp;
mod runtime;
mod shared;

use pyo3::prelude::*;

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<runtime::Runtime>()?;
    m.add_class::<runtime::MemoryPool>()?;
    m.add_class::<handles::JSObject>()?;
    m.add_class::<handles::JSFunction>()?;
    m.add_class::<handles::JSPromise>()?;
    m.add_class::<handles::JSScript>()?;
    m.add_class::<fastpath::FastCalls>()?;
    m.add("JSError", py.get_type::<errors::JSError>())?;
    m.add("JSTerminated", py.get_type::<errors::JSTerminated>())?;
    m.add("JSThrow", py.get_type::<errors::JSThrow>())?;
    m.add("JSValueTooLarge", py.get_type::<errors::JSValueTooLarge>())?;
    m.add_function(wrap_pyfunction!(convert::init_types, m)?)?;
    m.add("ELEMENT_COST", convert::ELEMENT_COST)?;
    m.add("MAX_DEPTH", convert::MAX_DEPTH)?;
    m.add("QUICKJS_VERSION", quickjs_version())?;
    resp::register(m)?;
    Ok(())
}

fn quickjs_version() -> String {
    // SAFETY: `JS_GetVersion` needs no runtime and returns a static NUL-terminated string.
    let p = unsafe { rquickjs::qjs::JS_GetVersion() };
    // SAFETY: `p` is that static string, valid for the whole program.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
