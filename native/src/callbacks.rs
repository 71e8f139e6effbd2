//! Python callables as JS functions.
//!
//! JS calls `f(a, b)`; Python receives `callable(a, b)` with the arguments converted, and its
//! return value goes back converted. A `JSThrow(v)` throws `v` as it is; `JSTerminated` (or a
//! deadline that passed while Python ran, even if Python swallowed the exception) throws the
//! uncatchable termination; any other exception becomes a catchable JS `Error` with the Python
//! message, remembered so that if it leaves JS untouched, the original Python exception is
//! raised again.

use std::ptr::NonNull;
use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rquickjs::function::Rest;
use rquickjs::{qjs, Ctx, Function, Value};

use crate::convert::{call_helper, dup, from_py, new_js_string, to_py};
use crate::errors::{throw_terminated, JSTerminated, JSThrow};
use crate::shared::{Helper, Shared};

pub fn new_py_function(py: Python<'_>, shared: &Rc<Shared>, callable: Py<PyAny>) -> PyResult<qjs::JSValue> {
    let _ = py;
    let ctx = unsafe { Ctx::from_raw(NonNull::new(shared.ctx.get()).expect("live context")) };
    let f = make_function(ctx, shared.clone(), callable)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("could not create a JS function: {e}")))?;
    let v = f.into_value();
    let raw = dup(shared.ctx.get(), v.as_raw());
    Ok(raw)
}

fn make_function<'js>(ctx: Ctx<'js>, s: Rc<Shared>, callable: Py<PyAny>) -> rquickjs::Result<Function<'js>> {
    Function::new(ctx, move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
        Python::attach(|py| invoke(py, &s, &callable, &ctx, &args.0))
    })
}

fn invoke<'js>(
    py: Python<'_>,
    shared: &Rc<Shared>,
    callable: &Py<PyAny>,
    ctx: &Ctx<'js>,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let converted: PyResult<Vec<Py<PyAny>>> =
        args.iter().map(|a| to_py(py, shared, a.as_raw(), 0)).collect();
    let result = converted.and_then(|a| callable.call1(py, PyTuple::new(py, a)?));
    if shared.interrupted.get() {
        throw_terminated(shared);
        return Err(rquickjs::Error::Exception);
    }
    let result = result.and_then(|r| from_py(py, shared, r.bind(py), 0));
    match result {
        Ok(v) => Ok(unsafe { Value::from_raw(ctx.clone(), v) }),
        Err(err) => {
            throw_py_error(py, shared, err);
            Err(rquickjs::Error::Exception)
        }
    }
}

/// Throw a Python exception into JS (see the module doc).
fn throw_py_error(py: Python<'_>, shared: &Rc<Shared>, err: PyErr) {
    let ctx = shared.ctx.get();
    if err.is_instance_of::<JSTerminated>(py) {
        throw_terminated(shared);
        return;
    }
    if err.is_instance_of::<JSThrow>(py) {
        let value = err.value(py).getattr("args").and_then(|a| a.get_item(0));
        let thrown = match value {
            Ok(v) => from_py(py, shared, &v, 0),
            Err(e) => Err(e),
        };
        match thrown {
            Ok(v) => {
                unsafe { qjs::JS_Throw(ctx, v) };
                return;
            }
            Err(e) => return throw_py_error(py, shared, e),
        }
    }
    let message = err.value(py).str().map(|s| s.unbind());
    let message = match message {
        Ok(m) => new_js_string(py, ctx, m.bind(py)),
        Err(e) => Err(e),
    };
    let error = match message.and_then(|mut m| {
        let r = call_helper(py, shared, Helper::MakeError, std::slice::from_mut(&mut m));
        unsafe { qjs::JS_FreeValue(ctx, m) };
        r
    }) {
        Ok(e) => e,
        Err(_) => unsafe { qjs::JS_NewError(ctx) },
    };
    shared.forget_py_error();
    *shared.py_error.borrow_mut() = Some((err, dup(ctx, error)));
    unsafe { qjs::JS_Throw(ctx, error) };
}
