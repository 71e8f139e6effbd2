//! Handles: Python references to JS values that have no Python equivalent.
//!
//! `JSObject` (any object or symbol), `JSFunction` (callable), `JSPromise` (state, result,
//! `then`) and `JSScript` (compiled, not yet run). A handle holds a slot in its runtime's
//! `Shared`; after `Runtime.close()` every method raises instead of touching freed memory.

use std::rc::Rc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rquickjs::qjs;

use crate::convert::{call_helper, from_py, value_to_py};
use crate::errors::take_exception;
use crate::shared::{Entry, Helper, Shared, UNDEFINED};

#[pyclass(subclass, unsendable, module = "jshost._engine")]
pub struct JSObject {
    pub shared: Rc<Shared>,
    pub slot: usize,
}

#[pyclass(extends = JSObject, unsendable, module = "jshost._engine")]
pub struct JSFunction;

#[pyclass(extends = JSObject, unsendable, module = "jshost._engine")]
pub struct JSPromise;

#[pyclass(extends = JSObject, unsendable, module = "jshost._engine")]
pub struct JSScript;

impl Drop for JSObject {
    fn drop(&mut self) {
        self.shared.release(self.slot);
    }
}

/// Wrap an owned JS value in the right handle class.
pub fn new_handle(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue) -> PyResult<Py<PyAny>> {
    let ctx = shared.ctx.get();
    // SAFETY: live (callers are inside an entry or checked `closed`); `v` is owned by the caller.
    let is_function = unsafe { qjs::JS_IsFunction(ctx, v) };
    // SAFETY: `v` is a valid value (owned by the caller); reads its class only.
    let is_promise = unsafe { qjs::JS_IsPromise(v) };
    let base = JSObject { shared: shared.clone(), slot: shared.store(v) };
    let init = PyClassInitializer::from(base);
    Ok(if is_function {
        Py::new(py, init.add_subclass(JSFunction))?.into_any()
    } else if is_promise {
        Py::new(py, init.add_subclass(JSPromise))?.into_any()
    } else {
        Py::new(py, init)?.into_any()
    })
}

pub fn new_script(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue) -> PyResult<Py<PyAny>> {
    let base = JSObject { shared: shared.clone(), slot: shared.store(v) };
    Ok(Py::new(py, PyClassInitializer::from(base).add_subclass(JSScript))?.into_any())
}

/// Convert a list of Python arguments to owned JS values (freed by `free_all`).
pub fn args_to_js(py: Python<'_>, shared: &Rc<Shared>, args: &Bound<'_, PyTuple>) -> PyResult<Vec<qjs::JSValue>> {
    let mut out = Vec::with_capacity(args.len());
    for a in args.iter() {
        match from_py(py, shared, &a, 0) {
            Ok(v) => out.push(v),
            Err(e) => {
                free_all(shared, out);
                return Err(e);
            }
        }
    }
    Ok(out)
}

pub fn free_all(shared: &Shared, vals: Vec<qjs::JSValue>) {
    for v in vals {
        // SAFETY: live: every caller is inside an `Entry` and hands over values it owns.
        unsafe { qjs::JS_FreeValue(shared.ctx.get(), v) };
    }
}

/// A call's result when a refused allocation stopped JS (`Shared::oom_stop_due`): the stop,
/// even if JS caught the error and returned; the result (or its exception) is freed.
pub fn oom_stopped(shared: &Rc<Shared>, r: qjs::JSValue) -> PyErr {
    // SAFETY: reads the tag only.
    let failed = unsafe { qjs::JS_IsException(r) };
    let ctx = shared.ctx.get();
    // SAFETY: live (callers are inside an `Entry`); the exception taken, or `r`, is owned and
    // no longer used.
    unsafe { qjs::JS_FreeValue(ctx, if failed { qjs::JS_GetException(ctx) } else { r }) };
    shared.interrupted.set(false);
    crate::errors::oom_stop()
}

/// Take ownership of a call's result: an exception becomes a Python error, a value is
/// converted and freed.
pub fn finish(py: Python<'_>, shared: &Rc<Shared>, r: qjs::JSValue) -> PyResult<Py<PyAny>> {
    if shared.oom_stop_due() {
        return Err(oom_stopped(shared, r));
    }
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(r) } {
        return Err(take_exception(py, shared));
    }
    let out = value_to_py(py, shared, r);
    // SAFETY: live (callers are inside an `Entry`); `r` is owned (a call's result) and no longer
    // used.
    unsafe { qjs::JS_FreeValue(shared.ctx.get(), r) };
    out
}

/// Call `f` with `this` and arguments, all borrowed from Python.
pub fn call_value(
    py: Python<'_>,
    shared: &Rc<Shared>,
    f: qjs::JSValue,
    this: Option<&Bound<'_, PyAny>>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<Py<PyAny>> {
    let _entry = Entry::new(shared)?;
    let this_js = match this {
        Some(t) => from_py(py, shared, t, 0)?,
        None => UNDEFINED,
    };
    let mut argv = match args_to_js(py, shared, args) {
        Ok(a) => a,
        Err(e) => {
            free_all(shared, vec![this_js]);
            return Err(e);
        }
    };
    let ctx = shared.ctx.get();
    // SAFETY: live (`Entry` held); `f` is borrowed from its handle, `this_js` and `argv` are owned
    // and stay alive through the call.
    let r = unsafe { qjs::JS_Call(ctx, f, this_js, argv.len() as i32, argv.as_mut_ptr()) };
    argv.push(this_js);
    free_all(shared, argv);
    finish(py, shared, r)
}

impl JSObject {
    pub fn value(&self) -> PyResult<qjs::JSValue> {
        self.shared.check_open()?;
        Ok(self.shared.get(self.slot))
    }

    fn key_atom(&self, py: Python<'_>, key: &str) -> PyResult<qjs::JSAtom> {
        // SAFETY: live (callers got the value through `value()`, which checks `closed`); `key`
        // outlives the call; the atom is owned by the caller.
        let atom = unsafe { qjs::JS_NewAtomLen(self.shared.ctx.get(), key.as_ptr() as *const _, key.len() as _) };
        if atom == 0 {
            return Err(take_exception(py, &self.shared)); // out of memory
        }
        Ok(atom)
    }
}

#[pymethods]
impl JSObject {
    /// `typeof` of the value ("object", "function", "symbol").
    #[getter]
    fn typeof_(&self) -> PyResult<&'static str> {
        let v = self.value()?;
        // SAFETY: live (`value()` checked `closed`); `v` is borrowed from its slot.
        Ok(unsafe {
            if qjs::JS_IsSymbol(v) {
                "symbol"
            } else if qjs::JS_IsFunction(self.shared.ctx.get(), v) {
                "function"
            } else {
                "object"
            }
        })
    }

    /// Read a property (`obj[key]`), running getters.
    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        let v = self.value()?;
        let _entry = Entry::new(&self.shared)?;
        let atom = self.key_atom(py, key)?;
        // SAFETY: live (`Entry` held); `v` is borrowed from its slot, `atom` is owned.
        let r = unsafe { qjs::JS_GetProperty(self.shared.ctx.get(), v, atom) };
        // SAFETY: live; `atom` is owned and no longer used.
        unsafe { qjs::JS_FreeAtom(self.shared.ctx.get(), atom) };
        finish(py, &self.shared, r)
    }

    /// Assign a property (`obj[key] = value`), running setters.
    fn set(&self, py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = self.value()?;
        let _entry = Entry::new(&self.shared)?;
        let ctx = self.shared.ctx.get();
        let atom = self.key_atom(py, key)?;
        let val = match from_py(py, &self.shared, value, 0) {
            Ok(val) => val,
            Err(e) => {
                // SAFETY: live; `atom` is owned and no longer used.
                unsafe { qjs::JS_FreeAtom(ctx, atom) };
                return Err(e);
            }
        };
        // SAFETY: live (`Entry` held); `val` is owned and consumed by `JS_SetProperty`; `v` is
        // borrowed.
        let rc = unsafe { qjs::JS_SetProperty(ctx, v, atom, val) };
        // SAFETY: live; `atom` is owned and no longer used.
        unsafe { qjs::JS_FreeAtom(ctx, atom) };
        if rc < 0 {
            return Err(take_exception(py, &self.shared));
        }
        Ok(())
    }

    /// Delete a property; true when it is gone.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let v = self.value()?;
        let _entry = Entry::new(&self.shared)?;
        let ctx = self.shared.ctx.get();
        let atom = self.key_atom(py, key)?;
        // SAFETY: live (`Entry` held); `v` is borrowed from its slot, `atom` is owned.
        let rc = unsafe { qjs::JS_DeleteProperty(ctx, v, atom, 0) };
        // SAFETY: live; `atom` is owned and no longer used.
        unsafe { qjs::JS_FreeAtom(ctx, atom) };
        if rc < 0 {
            return Err(take_exception(py, &self.shared));
        }
        Ok(rc == 1)
    }

    /// The `for…in` keys (own and inherited enumerable) with their values, in order.
    fn for_in(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = self.value()?;
        let _entry = Entry::new(&self.shared)?;
        let flat = call_helper(py, &self.shared, Helper::ForIn, &mut [v])?;
        let items = value_to_py(py, &self.shared, flat);
        // SAFETY: live (`Entry` held); `flat` is owned (a helper's result) and no longer used.
        unsafe { qjs::JS_FreeValue(self.shared.ctx.get(), flat) };
        let items = items?;
        let items = items.bind(py).cast::<PyList>()?;
        let pairs = PyList::empty(py);
        let mut it = items.iter();
        while let (Some(k), Some(val)) = (it.next(), it.next()) {
            pairs.append((k, val))?;
        }
        Ok(pairs.into_any().unbind())
    }

    fn __repr__(&self) -> String {
        if self.shared.closed.get() {
            return "<JS handle (runtime closed)>".into();
        }
        format!("<JS {} handle>", self.typeof_().unwrap_or("?"))
    }
}

#[pymethods]
impl JSFunction {
    /// Call with `this` (default `undefined`) and the given arguments.
    #[pyo3(signature = (*args, this=None))]
    fn __call__(
        slf: PyRef<'_, Self>,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        this: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let base = slf.as_super();
        let f = base.value()?;
        call_value(py, &base.shared, f, this, args)
    }

    /// True for an `async function` / async arrow function.
    #[getter]
    fn is_async(slf: PyRef<'_, Self>) -> PyResult<bool> {
        let v = slf.as_super().value()?;
        // SAFETY: live (`value()` checked `closed`); `v` is borrowed from its slot.
        Ok(unsafe { qjs::JS_IsAsyncFunction(v) })
    }
}

#[pymethods]
impl JSPromise {
    /// "pending", "fulfilled" or "rejected".
    #[getter]
    fn state(slf: PyRef<'_, Self>) -> PyResult<&'static str> {
        let base = slf.as_super();
        let v = base.value()?;
        // SAFETY: live (`value()` checked `closed`); `v` is borrowed from its slot; runs no JS.
        let s = unsafe { qjs::JS_PromiseState(base.shared.ctx.get(), v) };
        Ok(match s {
            qjs::JSPromiseStateEnum_JS_PROMISE_PENDING => "pending",
            qjs::JSPromiseStateEnum_JS_PROMISE_FULFILLED => "fulfilled",
            _ => "rejected",
        })
    }

    /// The value (fulfilled) or reason (rejected); ValueError while pending.
    #[getter]
    fn result(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let base = slf.as_super();
        let v = base.value()?;
        let ctx = base.shared.ctx.get();
        // SAFETY: live (`value()` checked `closed`); `v` is borrowed from its slot; runs no JS.
        if unsafe { qjs::JS_PromiseState(ctx, v) } == qjs::JSPromiseStateEnum_JS_PROMISE_PENDING {
            return Err(PyValueError::new_err("the promise is still pending"));
        }
        let _entry = Entry::new(&base.shared)?;
        // SAFETY: live (`Entry` held); `v` is a settled promise; the result is a new reference,
        // owned.
        let r = unsafe { qjs::JS_PromiseResult(ctx, v) };
        finish(py, &base.shared, r)
    }

    /// `promise.then(on_fulfilled, on_rejected)` with the engine's own `then`: the callbacks
    /// run as jobs (`Runtime.run_jobs`). Returns the derived promise.
    #[pyo3(signature = (on_fulfilled=None, on_rejected=None))]
    fn then(
        slf: PyRef<'_, Self>,
        py: Python<'_>,
        on_fulfilled: Option<&Bound<'_, PyAny>>,
        on_rejected: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let base = slf.as_super();
        let v = base.value()?;
        let shared = &base.shared;
        let _entry = Entry::new(shared)?;
        let mut argv = vec![crate::convert::dup(shared.ctx.get(), v)];
        for cb in [on_fulfilled, on_rejected] {
            match cb.map(|c| from_py(py, shared, c, 0)).transpose() {
                Ok(x) => argv.push(x.unwrap_or(UNDEFINED)),
                Err(e) => {
                    free_all(shared, argv);
                    return Err(e);
                }
            }
        }
        let r = call_helper(py, shared, Helper::PromiseThen, &mut argv);
        free_all(shared, argv);
        let r = r?;
        finish(py, shared, r)
    }
}

#[pymethods]
impl JSScript {
    /// Run the compiled script at global scope; returns its completion value.
    fn run(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let base = slf.as_super();
        let v = base.value()?;
        let shared = &base.shared;
        let _entry = Entry::new(shared)?;
        // SAFETY: reads the tag only.
        if unsafe { qjs::JS_VALUE_GET_TAG(v) } != qjs::JS_TAG_FUNCTION_BYTECODE {
            return Err(PyRuntimeError::new_err("this script has already run"));
        }
        let ctx = shared.ctx.get();
        // JS_EvalFunction consumes its argument: give it a reference of its own.
        // SAFETY: live (`Entry` held); `v` is compiled bytecode, borrowed: the copy made here is
        // what `JS_EvalFunction` consumes.
        let r = unsafe { qjs::JS_EvalFunction(ctx, qjs::JS_DupValue(ctx, v)) };
        finish(py, shared, r)
    }
}
