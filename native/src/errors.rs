//! JS exceptions as Python exceptions, and back.
//!
//! - `JSError(Exception)`: an uncaught JS exception. `.value` is the thrown value as it was (a
//!   thrown string stays a `str`; an Error stays a handle), `.text` is `String(value)`, and
//!   `.name`, `.message`, `.stack` are read off an object (else `None`).
//! - `JSTerminated(BaseException)`: JS was stopped at its deadline. It derives from
//!   `BaseException` so `except Exception` in a callback cannot swallow it.
//! - `JSThrow(Exception)`: raised by a Python callable to throw `args[0]` into JS as it is.
//! - `JSValueTooLarge(ValueError)`: a value leaving JS costs more than the runtime's value
//!   limit (`Runtime.set_value_limit`); `.limit` is that limit in bytes.

use std::rc::Rc;

use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use rquickjs::qjs;

use crate::convert::{call_helper, js_string_to_py, value_to_py};
use crate::shared::{Helper, Shared};

create_exception!(_engine, JSError, PyException, "An uncaught JS exception.");
create_exception!(_engine, JSTerminated, PyBaseException, "JS execution was stopped at its deadline.");
create_exception!(_engine, JSThrow, PyException, "Raise from a Python callable to throw args[0] into JS.");
create_exception!(_engine, JSValueTooLarge, PyValueError, "A value leaving JS costs more than the runtime's value limit.");

/// The error for a value over the runtime's value limit (its `.limit` attribute says which).
pub fn value_too_large(py: Python<'_>, shared: &Shared) -> PyErr {
    let limit = shared.value_limit.get();
    let text = match shared.value_error.borrow().as_ref() {
        Some(t) => t.clone(),
        None => format!("value too large to leave JS (more than {limit} bytes)"),
    };
    let err = JSValueTooLarge::new_err(text);
    let _ = err.value(py).setattr("limit", limit);
    err
}

/// JS was stopped because an allocation was refused (`Shared::stop_on_oom`).
pub fn oom_stop() -> PyErr {
    JSTerminated::new_err("JS execution was stopped: out of memory")
}

/// Take the pending JS exception and turn it into the Python exception to raise.
pub fn take_exception(py: Python<'_>, shared: &Rc<Shared>) -> PyErr {
    let ctx = shared.ctx.get();
    // SAFETY: live (an exception was just signalled inside an entry); the value taken is owned.
    let exc = unsafe { qjs::JS_GetException(ctx) };
    let err = exception_to_pyerr(py, shared, exc);
    // SAFETY: live; `exc` is owned and no longer used.
    unsafe { qjs::JS_FreeValue(ctx, exc) };
    err
}

/// Convert a thrown value (borrowed) to the Python exception that stands for it.
pub fn exception_to_pyerr(py: Python<'_>, shared: &Rc<Shared>, exc: qjs::JSValue) -> PyErr {
    if shared.heap.refused.get() {
        // SAFETY: reads the tag only.
        let tag = unsafe { qjs::JS_VALUE_GET_TAG(exc) };
        if tag == qjs::JS_TAG_UNINITIALIZED || tag == qjs::JS_TAG_NULL {
            return missing_out_of_memory(py, shared);
        }
    }
    // SAFETY: `exc` is a valid value (borrowed); reads its object's flags only.
    if shared.interrupted.get() && unsafe { qjs::JS_IsUncatchableError(exc) } {
        if shared.depth.get() <= 1 {
            shared.interrupted.set(false);
        }
        return JSTerminated::new_err("JS execution was stopped at its deadline");
    }
    let reraised = {
        let mut slot = shared.py_error.borrow_mut();
        match slot.as_ref() {
            Some((_, v)) if same_object(*v, exc) => slot.take(),
            _ => None,
        }
    };
    if let Some((err, v)) = reraised {
        // SAFETY: live; the remembered value is owned (taken out of `py_error`).
        unsafe { qjs::JS_FreeValue(shared.ctx.get(), v) };
        return err;
    }
    if shared.converting_error.get() {
        // An exception thrown while another one is being converted (say, by a getter): report
        // it without running any JS, which could fail the same way again and again.
        let text = describe(py, shared, exc);
        return js_error(py, text.clone_ref(py), text, [py.None(), py.None(), py.None()]);
    }
    shared.converting_error.set(true);
    // A stack overflow is reported at the stack limit: give the conversion some room.
    let err = shared.with_stack_reserve(|| build_js_error(py, shared, exc));
    shared.converting_error.set(false);
    err
}

/// After an allocation was refused, QuickJS threw `null` (what it throws when it cannot
/// allocate its out-of-memory error) or signalled an exception without throwing any (it does
/// that when it cannot allocate an atom: "XXX: should generate an exception" in
/// `JS_NewAtomStr`). Report the out-of-memory it is.
fn missing_out_of_memory(py: Python<'_>, shared: &Rc<Shared>) -> PyErr {
    let ctx = shared.ctx.get();
    // SAFETY: live (an allocation was refused inside an entry).
    unsafe { qjs::JS_ThrowOutOfMemory(ctx) };
    // SAFETY: live; the value taken is owned.
    let oom = unsafe { qjs::JS_GetException(ctx) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_VALUE_GET_TAG(oom) } != qjs::JS_TAG_UNINITIALIZED {
        let err = exception_to_pyerr(py, shared, oom);
        // SAFETY: live; `oom` is owned and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, oom) };
        return err;
    }
    let text = PyString::new(py, "InternalError: out of memory").into_any().unbind();
    let parts = [PyString::new(py, "InternalError").into_any().unbind(), PyString::new(py, "out of memory").into_any().unbind(), py.None()];
    js_error(py, text.clone_ref(py), text, parts)
}

/// A JSError with its attributes.
fn js_error(py: Python<'_>, text: Py<PyAny>, value: Py<PyAny>, name_message_stack: [Py<PyAny>; 3]) -> PyErr {
    let err = JSError::new_err(text.clone_ref(py));
    let inst = err.value(py);
    let _ = inst.setattr("value", value);
    let _ = inst.setattr("text", text);
    for (attr, v) in ["name", "message", "stack"].into_iter().zip(name_message_stack) {
        let _ = inst.setattr(attr, v);
    }
    err
}

/// `String(exc)` without running JS: a string as it is, an error as "name: message".
fn describe(py: Python<'_>, shared: &Rc<Shared>, exc: qjs::JSValue) -> Py<PyAny> {
    let ctx = shared.ctx.get();
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsString(exc) } {
        if let Ok(s) = js_string_to_py(py, ctx, exc) {
            return s;
        }
    }
    // SAFETY: `exc` is a valid value (borrowed); reads its class only.
    if unsafe { qjs::JS_IsError(exc) } {
        let name = own_data_string(py, shared, exc, "name");
        let message = own_data_string(py, shared, exc, "message");
        if let (Some(n), Some(m)) = (name, message) {
            let text = if m.is_empty() { n } else { format!("{n}: {m}") };
            return PyString::new(py, &text).into_any().unbind();
        }
    }
    PyString::new(py, "[a JS exception that could not be converted]").into_any().unbind()
}

/// A string property read without running JS (no getter, no proxy): own or inherited data.
fn own_data_string(py: Python<'_>, shared: &Rc<Shared>, obj: qjs::JSValue, name: &str) -> Option<String> {
    let ctx = shared.ctx.get();
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: live; `cname` is NUL-terminated and outlives the call; the atom is owned (freed
    // below).
    let atom = unsafe { qjs::JS_NewAtom(ctx, cname.as_ptr()) };
    if atom == 0 {
        return None;
    }
    // SAFETY: live; `obj` is borrowed; the copy is owned by the loop as `cur`.
    let mut cur = unsafe { qjs::JS_DupValue(ctx, obj) };
    let mut out = None;
    // Errors and their prototypes are ordinary objects: walking the chain runs no JS.
    for _ in 0..16 {
        let mut desc = std::mem::MaybeUninit::<qjs::JSPropertyDescriptor>::uninit();
        // SAFETY: live; `desc` is a valid place for a descriptor; `cur` is owned, `atom` too.
        let rc = unsafe { qjs::JS_GetOwnProperty(ctx, desc.as_mut_ptr(), cur, atom) };
        if rc < 0 {
            // SAFETY: live; the pending exception is taken, owned.
            let e = unsafe { qjs::JS_GetException(ctx) };
            // SAFETY: live; `e` is owned and dropped on purpose.
            unsafe { qjs::JS_FreeValue(ctx, e) };
            break;
        }
        if rc > 0 {
            // SAFETY: `JS_GetOwnProperty` returned 1, so it filled `desc` in.
            let desc = unsafe { desc.assume_init() };
            // SAFETY: reads the tag only.
            if unsafe { qjs::JS_IsString(desc.value) } {
                out = js_string_to_py(py, ctx, desc.value).ok().and_then(|s| s.extract::<String>(py).ok());
            }
            // SAFETY: live; the descriptor's three values are owned by us (`JS_GetOwnProperty`
            // gives references).
            unsafe {
                qjs::JS_FreeValue(ctx, desc.value);
                qjs::JS_FreeValue(ctx, desc.getter);
                qjs::JS_FreeValue(ctx, desc.setter);
            }
            break;
        }
        // SAFETY: live; `cur` is an ordinary object (checked below on each turn), so no JS runs;
        // the prototype is a new reference.
        let next = unsafe { qjs::JS_GetPrototype(ctx, cur) };
        // SAFETY: live; `cur` is owned and replaced by `next`.
        unsafe { qjs::JS_FreeValue(ctx, cur) };
        cur = next;
        // SAFETY: reads the tag only.
        if unsafe { qjs::JS_IsException(cur) } {
            // SAFETY: live; the pending exception is taken, owned.
            let e = unsafe { qjs::JS_GetException(ctx) };
            // SAFETY: live; `e` is owned and dropped on purpose.
            unsafe { qjs::JS_FreeValue(ctx, e) };
            cur = crate::shared::UNDEFINED;
            break;
        }
        // SAFETY: reads the tag; `cur` is owned, and its class is read only once it is an object.
        let ordinary = unsafe {
            qjs::JS_VALUE_GET_TAG(cur) == qjs::JS_TAG_OBJECT
                && (qjs::JS_GetClassID(cur) == shared.object_class.get() || qjs::JS_IsError(cur))
        };
        if !ordinary {
            break;
        }
    }
    // SAFETY: live; `cur` is owned.
    unsafe { qjs::JS_FreeValue(ctx, cur) };
    // SAFETY: live; `atom` is owned.
    unsafe { qjs::JS_FreeAtom(ctx, atom) };
    out
}

fn same_object(a: qjs::JSValue, b: qjs::JSValue) -> bool {
    // SAFETY: reads the tag only.
    unsafe {
        qjs::JS_VALUE_GET_TAG(a) == qjs::JS_TAG_OBJECT
            && qjs::JS_VALUE_GET_TAG(b) == qjs::JS_TAG_OBJECT
            && qjs::JS_VALUE_GET_PTR(a) == qjs::JS_VALUE_GET_PTR(b)
    }
}

fn build_js_error(py: Python<'_>, shared: &Rc<Shared>, exc: qjs::JSValue) -> PyErr {
    let ctx = shared.ctx.get();
    // `String(value)`; if even that fails (out of memory, say), a description made without JS.
    // A `toString` stopped at the deadline stops the whole call.
    let text = match call_helper(py, shared, Helper::SafeString, &mut [exc]).and_then(|t| {
        let s = js_string_to_py(py, ctx, t);
        // SAFETY: live; `t` is owned (the helper's result) and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, t) };
        s
    }) {
        Ok(text) => text,
        Err(e) if e.is_instance_of::<JSTerminated>(py) => return e,
        Err(_) => describe(py, shared, exc),
    };
    let value = match value_to_py(py, shared, exc) {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<JSTerminated>(py) => return e,
        Err(_) => text.clone_ref(py),
    };
    let mut parts = [py.None(), py.None(), py.None()];
    for (part, name) in parts.iter_mut().zip(["name", "message", "stack"]) {
        match string_property(py, shared, exc, name) {
            Ok(v) => *part = v,
            Err(e) => return e,
        }
    }
    js_error(py, text, value, parts)
}

/// A string-valued property of an object, or None. A throwing getter gives None too, unless it
/// was stopped at the deadline: that is JSTerminated.
fn string_property(py: Python<'_>, shared: &Rc<Shared>, obj: qjs::JSValue, name: &str) -> Result<Py<PyAny>, PyErr> {
    let ctx = shared.ctx.get();
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_VALUE_GET_TAG(obj) } != qjs::JS_TAG_OBJECT {
        return Ok(py.None());
    }
    let cname = std::ffi::CString::new(name).expect("property names have no NUL");
    // SAFETY: live; `obj` is borrowed; `cname` is NUL-terminated and outlives the call; the result
    // is owned.
    let v = unsafe { qjs::JS_GetPropertyStr(ctx, obj, cname.as_ptr()) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(v) } {
        let err = take_exception(py, shared);
        if err.is_instance_of::<JSTerminated>(py) {
            return Err(err);
        }
        return Ok(py.None());
    }
    // SAFETY: reads the tag only.
    let out = if unsafe { qjs::JS_IsString(v) } {
        js_string_to_py(py, ctx, v).unwrap_or_else(|_| py.None())
    } else {
        py.None()
    };
    // SAFETY: live; `v` is owned and no longer used.
    unsafe { qjs::JS_FreeValue(ctx, v) };
    Ok(out)
}

/// Throw an uncatchable error into JS (the deadline passed, or a callback raised JSTerminated).
pub fn throw_terminated(shared: &Shared) -> qjs::JSValue {
    let ctx = shared.ctx.get();
    shared.interrupted.set(true);
    // SAFETY: live (called inside JS: a callback or a conversion); each new value is owned and
    // either handed to a function that consumes it (`JS_SetPropertyStr`, `JS_Throw`) or returned.
    unsafe {
        let e = qjs::JS_NewError(ctx);
        if qjs::JS_IsException(e) {
            return e; // out of memory, thrown instead
        }
        let msg = qjs::JS_NewStringLen(ctx, b"interrupted".as_ptr() as *const _, 11);
        if !qjs::JS_IsException(msg) {
            qjs::JS_SetPropertyStr(ctx, e, c"message".as_ptr(), msg);
        }
        qjs::JS_SetUncatchableError(ctx, e);
        qjs::JS_Throw(ctx, e)
    }
}
