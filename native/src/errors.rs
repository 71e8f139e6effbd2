//! JS exceptions as Python exceptions, and back.
//!
//! - `JSError(Exception)`: an uncaught JS exception. `.value` is the thrown value as it was (a
//!   thrown string stays a `str`; an Error stays a handle), `.text` is `String(value)`, and
//!   `.name`, `.message`, `.stack` are read off an object (else `None`).
//! - `JSTerminated(BaseException)`: JS was stopped at its deadline. It derives from
//!   `BaseException` so `except Exception` in a callback cannot swallow it.
//! - `JSThrow(Exception)`: raised by a Python callable to throw `args[0]` into JS as it is.

use std::rc::Rc;

use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException};
use pyo3::prelude::*;
use rquickjs::qjs;

use crate::convert::{call_helper, js_string_to_py, to_py};
use crate::shared::{Helper, Shared};

create_exception!(_engine, JSError, PyException, "An uncaught JS exception.");
create_exception!(_engine, JSTerminated, PyBaseException, "JS execution was stopped at its deadline.");
create_exception!(_engine, JSThrow, PyException, "Raise from a Python callable to throw args[0] into JS.");

/// Take the pending JS exception and turn it into the Python exception to raise.
pub fn take_exception(py: Python<'_>, shared: &Rc<Shared>) -> PyErr {
    let ctx = shared.ctx.get();
    let exc = unsafe { qjs::JS_GetException(ctx) };
    let err = exception_to_pyerr(py, shared, exc);
    unsafe { qjs::JS_FreeValue(ctx, exc) };
    err
}

/// Convert a thrown value (borrowed) to the Python exception that stands for it.
pub fn exception_to_pyerr(py: Python<'_>, shared: &Rc<Shared>, exc: qjs::JSValue) -> PyErr {
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
        unsafe { qjs::JS_FreeValue(shared.ctx.get(), v) };
        return err;
    }
    match build_js_error(py, shared, exc) {
        Ok(e) => e,
        Err(e) => e,
    }
}

fn same_object(a: qjs::JSValue, b: qjs::JSValue) -> bool {
    unsafe {
        qjs::JS_VALUE_GET_TAG(a) == qjs::JS_TAG_OBJECT
            && qjs::JS_VALUE_GET_TAG(b) == qjs::JS_TAG_OBJECT
            && qjs::JS_VALUE_GET_PTR(a) == qjs::JS_VALUE_GET_PTR(b)
    }
}

fn build_js_error(py: Python<'_>, shared: &Rc<Shared>, exc: qjs::JSValue) -> PyResult<PyErr> {
    let ctx = shared.ctx.get();
    let text_js = call_helper(py, shared, Helper::SafeString, &mut [exc])?;
    let text = js_string_to_py(py, ctx, text_js);
    unsafe { qjs::JS_FreeValue(ctx, text_js) };
    let text = text?;
    let value = to_py(py, shared, exc, 0).unwrap_or_else(|_| text.clone_ref(py));
    let err = JSError::new_err(text.clone_ref(py));
    let inst = err.value(py);
    inst.setattr("value", value)?;
    inst.setattr("text", text)?;
    for name in ["name", "message", "stack"] {
        inst.setattr(name, string_property(py, shared, exc, name))?;
    }
    Ok(err)
}

/// A string-valued property of an object, or None.
fn string_property(py: Python<'_>, shared: &Rc<Shared>, obj: qjs::JSValue, name: &str) -> Py<PyAny> {
    let ctx = shared.ctx.get();
    if unsafe { qjs::JS_VALUE_GET_TAG(obj) } != qjs::JS_TAG_OBJECT {
        return py.None();
    }
    let cname = std::ffi::CString::new(name).expect("property names have no NUL");
    let v = unsafe { qjs::JS_GetPropertyStr(ctx, obj, cname.as_ptr()) };
    if unsafe { qjs::JS_IsException(v) } {
        // A throwing getter: drop its exception, report no value.
        let e = unsafe { qjs::JS_GetException(ctx) };
        unsafe { qjs::JS_FreeValue(ctx, e) };
        return py.None();
    }
    let out = if unsafe { qjs::JS_IsString(v) } {
        js_string_to_py(py, ctx, v).unwrap_or_else(|_| py.None())
    } else {
        py.None()
    };
    unsafe { qjs::JS_FreeValue(ctx, v) };
    out
}

/// Throw an uncatchable error into JS (the deadline passed, or a callback raised JSTerminated).
pub fn throw_terminated(shared: &Shared) -> qjs::JSValue {
    let ctx = shared.ctx.get();
    shared.interrupted.set(true);
    unsafe {
        let e = qjs::JS_NewError(ctx);
        let msg = qjs::JS_NewStringLen(ctx, b"interrupted".as_ptr() as *const _, 11);
        qjs::JS_SetPropertyStr(ctx, e, c"message".as_ptr(), msg);
        qjs::JS_SetUncatchableError(ctx, e);
        qjs::JS_Throw(ctx, e)
    }
}
