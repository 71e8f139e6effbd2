//! Python callables as JS functions.
//!
//! JS calls `f(a, b)`; Python receives `callable(a, b)` with the arguments converted, and its
//! return value goes back converted. A `JSThrow(v)` throws `v` as it is; `JSTerminated` (or a
//! deadline that passed while Python ran, even if Python swallowed the exception) throws the
//! uncatchable termination; any other exception becomes a catchable JS `Error` with the Python
//! message, remembered so that if it leaves JS untouched, the original Python exception is
//! raised again.
//!
//! Each such function is a C function (`JS_NewCFunctionData`) whose data is an object of the
//! runtime's `PyCallable` class; that object owns the Python reference, and its finalizer hands
//! it to `Shared::dead_callables`, released once JS is no longer running.

use std::ffi::c_int;
use std::rc::Rc;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rquickjs::qjs;

use crate::convert::{call_helper, dup, from_py, new_js_string, values_to_py};
use crate::errors::{throw_terminated, JSTerminated, JSThrow};
use crate::shared::{Helper, Shared};

/// What a `PyCallable` object owns.
struct Payload {
    shared: Rc<Shared>,
    callable: Py<PyAny>,
}

unsafe extern "C" fn finalize_payload(rt: *mut qjs::JSRuntime, val: qjs::JSValue) {
    let _ = rt;
    let p = qjs::JS_GetOpaque(val, qjs::JS_GetClassID(val)) as *mut Payload;
    if !p.is_null() {
        let Payload { shared, callable } = *Box::from_raw(p);
        // Released later, outside JS (see `Shared::dead_callables`). JS only runs while Python
        // holds the thread, so the move itself needs nothing more.
        match shared.dead_callables.try_borrow_mut() {
            Ok(mut dead) => dead.push(callable),
            Err(_) => drop(callable),
        };
    }
}

/// Register the `PyCallable` class in a new runtime.
pub fn register_class(shared: &Shared) -> PyResult<()> {
    let rt = shared.rt.get();
    let mut id: qjs::JSClassID = 0;
    let def = qjs::JSClassDef {
        class_name: c"PyCallable".as_ptr(),
        finalizer: Some(finalize_payload),
        gc_mark: None,
        call: None,
        exotic: std::ptr::null_mut(),
    };
    // SAFETY: `rt` is live (a new runtime, `Runtime::new`); `def` and its class name outlive the
    // call (QuickJS copies what it keeps).
    unsafe {
        qjs::JS_NewClassID(rt, &mut id);
        if qjs::JS_NewClass(rt, id, &def) < 0 {
            return Err(PyRuntimeError::new_err("could not register the PyCallable class"));
        }
    }
    shared.py_class.set(id);
    Ok(())
}

/// A new JS function (owned) that calls `callable`.
pub fn new_py_function(py: Python<'_>, shared: &Rc<Shared>, callable: Py<PyAny>) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    // SAFETY: live (called from a conversion, inside an `Entry`); the new object is owned.
    let holder = unsafe { qjs::JS_NewObjectClass(ctx, shared.py_class.get()) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(holder) } {
        return Err(crate::errors::take_exception(py, shared));
    }
    let payload = Box::new(Payload { shared: shared.clone(), callable });
    // SAFETY: `holder` is a new object of the `PyCallable` class, whose finalizer takes the box
    // back.
    unsafe { qjs::JS_SetOpaque(holder, Box::into_raw(payload) as *mut _) };
    let mut data = [holder];
    // SAFETY: live; `data` holds one borrowed value, which QuickJS duplicates into the function.
    let f = unsafe { qjs::JS_NewCFunctionData(ctx, Some(trampoline), 0, 0, 1, data.as_mut_ptr()) };
    // SAFETY: live; `holder` is owned, and the function now holds its own reference.
    unsafe { qjs::JS_FreeValue(ctx, holder) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(f) } {
        return Err(crate::errors::take_exception(py, shared));
    }
    Ok(f)
}

unsafe extern "C" fn trampoline(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: c_int,
    argv: *mut qjs::JSValue,
    _magic: c_int,
    data: *mut qjs::JSValue,
) -> qjs::JSValue {
    let holder = *data;
    let payload = qjs::JS_GetOpaque(holder, qjs::JS_GetClassID(holder)) as *const Payload;
    if payload.is_null() {
        return qjs::JS_ThrowInternalError(ctx, c"a Python function outlived its callable".as_ptr());
    }
    let args: &[qjs::JSValue] =
        if argc <= 0 || argv.is_null() { &[] } else { std::slice::from_raw_parts(argv, argc as usize) };
    // The payload lives as long as the function object, which JS holds while calling it.
    let payload = &*payload;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Python::attach(|py| invoke(py, &payload.shared, &payload.callable, args))
    }));
    match r {
        Ok(v) => v,
        Err(_) => qjs::JS_ThrowInternalError(ctx, c"the Python callback panicked".as_ptr()),
    }
}

/// Call the Python callable with borrowed JS arguments; returns an owned value or
/// `JS_EXCEPTION` with the exception thrown.
fn invoke(py: Python<'_>, shared: &Rc<Shared>, callable: &Py<PyAny>, args: &[qjs::JSValue]) -> qjs::JSValue {
    let result = convert_args(py, shared, args).and_then(|a| callable.call1(py, a));
    if shared.interrupted.get() {
        throw_terminated(shared);
        return EXCEPTION;
    }
    match result.and_then(|r| from_py(py, shared, r.bind(py), 0)) {
        Ok(v) => v,
        Err(err) => {
            throw_py_error(py, shared, err);
            EXCEPTION
        }
    }
}

const EXCEPTION: qjs::JSValue = qjs::JSValue {
    u: qjs::JSValueUnion { int32: 0 },
    tag: qjs::JS_TAG_EXCEPTION as i64,
};

/// The arguments as Python values; all of them together are one value for the value limit.
fn convert_args<'py>(py: Python<'py>, shared: &Rc<Shared>, args: &[qjs::JSValue]) -> PyResult<Bound<'py, PyTuple>> {
    if args.is_empty() {
        return Ok(PyTuple::empty(py));
    }
    PyTuple::new(py, values_to_py(py, shared, args)?)
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
                // SAFETY: live (called by `invoke`, inside JS); `v` is owned and consumed by
                // `JS_Throw`.
                unsafe { qjs::JS_Throw(ctx, v) };
                return;
            }
            Err(e) => return throw_py_error(py, shared, e),
        }
    }
    let message = err.value(py).str().map(|s| s.unbind());
    let message = match message {
        Ok(m) => new_js_string(py, shared, m.bind(py)),
        Err(e) => Err(e),
    };
    // At the stack limit even the helper call would overflow: allow it a little more stack.
    let error = shared.with_stack_reserve(|| {
        message.and_then(|mut m| {
            let r = call_helper(py, shared, Helper::MakeError, std::slice::from_mut(&mut m));
            // SAFETY: live; `m` is owned (`new_js_string`) and no longer used.
            unsafe { qjs::JS_FreeValue(ctx, m) };
            r
        })
    });
    let error = match error {
        Ok(e) => e,
        // SAFETY: live.
        Err(_) => unsafe { qjs::JS_NewError(ctx) },
    };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(error) } {
        return; // out of memory: QuickJS has thrown that instead
    }
    shared.forget_py_error();
    *shared.py_error.borrow_mut() = Some((err, dup(ctx, error)));
    // SAFETY: live; `error` is owned and consumed by `JS_Throw` (the remembered copy is `dup`'s).
    unsafe { qjs::JS_Throw(ctx, error) };
}
