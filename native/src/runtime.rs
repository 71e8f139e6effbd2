//! `Runtime`: one QuickJS runtime and its single context (one per library).

use std::ffi::CString;
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use rquickjs::qjs;

use crate::convert::{from_py, to_py};
use crate::errors::{exception_to_pyerr, take_exception};
use crate::handles::{finish, new_handle, new_script};
use crate::shared::{Entry, Shared, HELPER_COUNT, UNDEFINED};

const HELPERS_JS: &str = include_str!("helpers.js");

#[pyclass(unsendable, module = "jshost._engine")]
pub struct Runtime {
    shared: Rc<Shared>,
    // Dropped in this order: the context before the runtime.
    context: Option<rquickjs::Context>,
    runtime: Option<rquickjs::Runtime>,
}

fn engine_error(what: &str, e: rquickjs::Error) -> PyErr {
    PyRuntimeError::new_err(format!("{what}: {e}"))
}

impl Runtime {
    fn global(&self) -> qjs::JSValue {
        unsafe { qjs::JS_GetGlobalObject(self.shared.ctx.get()) }
    }

    fn eval_raw(&self, code: &str, filename: &str, flags: u32) -> PyResult<qjs::JSValue> {
        let mut src = Vec::with_capacity(code.len() + 1);
        src.extend_from_slice(code.as_bytes());
        src.push(0); // QuickJS wants a NUL after the input, even though it is given the length.
        let fname = CString::new(filename.replace('\0', " ")).expect("NULs were replaced");
        Ok(unsafe {
            qjs::JS_Eval(
                self.shared.ctx.get(),
                src.as_ptr() as *const _,
                code.len() as _,
                fname.as_ptr(),
                (qjs::JS_EVAL_TYPE_GLOBAL | flags) as i32,
            )
        })
    }

    fn init_helpers(&self, py: Python<'_>) -> PyResult<()> {
        let _entry = Entry::new(&self.shared)?;
        let arr = self.eval_raw(HELPERS_JS, "<jshost helpers>", 0)?;
        if unsafe { qjs::JS_IsException(arr) } {
            return Err(take_exception(py, &self.shared));
        }
        let ctx = self.shared.ctx.get();
        let mut helpers = self.shared.helpers.borrow_mut();
        for i in 0..HELPER_COUNT {
            helpers.push(unsafe { qjs::JS_GetPropertyUint32(ctx, arr, i as u32) });
        }
        unsafe { qjs::JS_FreeValue(ctx, arr) };
        let object_proto = unsafe {
            let probe = qjs::JS_NewObject(ctx);
            let proto = qjs::JS_GetPrototype(ctx, probe);
            qjs::JS_FreeValue(ctx, probe);
            proto
        };
        self.shared.object_proto.set(object_proto);
        Ok(())
    }
}

#[pymethods]
impl Runtime {
    /// A new runtime with one context holding the ECMAScript built-ins only (no I/O, no
    /// module loader, no timers). `memory_limit` in bytes (0 = none); `max_stack_size` in bytes.
    #[new]
    #[pyo3(signature = (memory_limit=0, max_stack_size=1024 * 1024))]
    fn new(py: Python<'_>, memory_limit: usize, max_stack_size: usize) -> PyResult<Self> {
        let rt = rquickjs::Runtime::new().map_err(|e| engine_error("could not create a runtime", e))?;
        if memory_limit > 0 {
            rt.set_memory_limit(memory_limit);
        }
        rt.set_max_stack_size(max_stack_size);
        let context = rquickjs::Context::full(&rt).map_err(|e| engine_error("could not create a context", e))?;
        let shared = Rc::new(Shared::new());
        let ctx_ptr: NonNull<qjs::JSContext> = context.with(|ctx| ctx.as_raw());
        shared.ctx.set(ctx_ptr.as_ptr());
        shared.rt.set(unsafe { qjs::JS_GetRuntime(ctx_ptr.as_ptr()) });
        let watch = shared.clone();
        rt.set_interrupt_handler(Some(Box::new(move || match watch.deadline.get() {
            Some(d) if Instant::now() >= d => {
                watch.interrupted.set(true);
                true
            }
            _ => false,
        })));
        let this = Runtime { shared, context: Some(context), runtime: Some(rt) };
        this.init_helpers(py)?;
        Ok(this)
    }

    /// Evaluate a script at global scope and return its completion value.
    #[pyo3(signature = (code, filename="<eval>"))]
    fn eval(&self, py: Python<'_>, code: &str, filename: &str) -> PyResult<Py<PyAny>> {
        let _entry = Entry::new(&self.shared)?;
        let r = self.eval_raw(code, filename, 0)?;
        finish(py, &self.shared, r)
    }

    /// Compile a script without running it (a syntax error raises JSError); run it later
    /// with `JSScript.run()`.
    #[pyo3(signature = (code, filename="<eval>"))]
    fn compile(&self, py: Python<'_>, code: &str, filename: &str) -> PyResult<Py<PyAny>> {
        let _entry = Entry::new(&self.shared)?;
        let r = self.eval_raw(code, filename, qjs::JS_EVAL_FLAG_COMPILE_ONLY)?;
        if unsafe { qjs::JS_IsException(r) } {
            return Err(take_exception(py, &self.shared));
        }
        new_script(py, &self.shared, r)
    }

    /// `globalThis[name]`.
    fn get_global(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let _entry = Entry::new(&self.shared)?;
        let g = self.global();
        let cname = CString::new(name).map_err(|_| PyValueError::new_err("name holds NUL"))?;
        let r = unsafe { qjs::JS_GetPropertyStr(self.shared.ctx.get(), g, cname.as_ptr()) };
        unsafe { qjs::JS_FreeValue(self.shared.ctx.get(), g) };
        finish(py, &self.shared, r)
    }

    /// `globalThis[name] = value`.
    fn set_global(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let _entry = Entry::new(&self.shared)?;
        let v = from_py(py, &self.shared, value, 0)?;
        let g = self.global();
        let cname = CString::new(name).map_err(|_| PyValueError::new_err("name holds NUL"))?;
        let rc = unsafe { qjs::JS_SetPropertyStr(self.shared.ctx.get(), g, cname.as_ptr(), v) };
        unsafe { qjs::JS_FreeValue(self.shared.ctx.get(), g) };
        if rc < 0 {
            return Err(take_exception(py, &self.shared));
        }
        Ok(())
    }

    /// The global object as a handle.
    #[getter]
    fn globals(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.shared.check_open()?;
        new_handle(py, &self.shared, self.global())
    }

    /// A new pending promise and its resolve and reject functions.
    fn new_promise(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let _entry = Entry::new(&self.shared)?;
        let ctx = self.shared.ctx.get();
        let mut funcs = [UNDEFINED, UNDEFINED];
        let p = unsafe { qjs::JS_NewPromiseCapability(ctx, funcs.as_mut_ptr()) };
        if unsafe { qjs::JS_IsException(p) } {
            return Err(take_exception(py, &self.shared));
        }
        let items = [
            new_handle(py, &self.shared, p)?,
            new_handle(py, &self.shared, funcs[0])?,
            new_handle(py, &self.shared, funcs[1])?,
        ];
        Ok(PyTuple::new(py, items)?.unbind())
    }

    /// Run queued jobs (promise reactions) until none is left. Returns the JSErrors raised by
    /// jobs; a deadline raises JSTerminated and leaves the remaining jobs queued.
    fn run_jobs(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let _entry = Entry::new(&self.shared)?;
        let errors = PyList::empty(py);
        let rt = self.shared.rt.get();
        while unsafe { qjs::JS_IsJobPending(rt) } {
            let mut job_ctx: *mut qjs::JSContext = std::ptr::null_mut();
            if unsafe { qjs::JS_ExecutePendingJob(rt, &mut job_ctx) } < 0 {
                let exc = unsafe { qjs::JS_GetException(self.shared.ctx.get()) };
                let err = exception_to_pyerr(py, &self.shared, exc);
                unsafe { qjs::JS_FreeValue(self.shared.ctx.get(), exc) };
                if err.is_instance_of::<crate::errors::JSTerminated>(py) {
                    return Err(err);
                }
                errors.append(err.value(py))?;
            }
        }
        Ok(errors.unbind())
    }

    /// Whether promise jobs are waiting to run.
    #[getter]
    fn has_pending_jobs(&self) -> PyResult<bool> {
        self.shared.check_open()?;
        Ok(unsafe { qjs::JS_IsJobPending(self.shared.rt.get()) })
    }

    /// Stop JS that is still running `seconds` from now (None: no limit). Applies to every
    /// later entry into JS until changed; needs no lock, so it is cheap to arm per call.
    #[pyo3(signature = (seconds))]
    fn set_deadline(&self, seconds: Option<f64>) -> PyResult<()> {
        let d = match seconds {
            None => None,
            Some(s) if s.is_finite() && s >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(s)),
            Some(s) if s.is_finite() => Some(Instant::now()),
            Some(_) => None,
        };
        self.shared.deadline.set(d);
        Ok(())
    }

    /// Heap limit in bytes (0 = none).
    fn set_memory_limit(&self, limit: usize) -> PyResult<()> {
        self.shared.check_open()?;
        if let Some(rt) = &self.runtime {
            rt.set_memory_limit(limit);
        }
        Ok(())
    }

    /// QuickJS's own account of its heap (`JS_ComputeMemoryUsage`), as a dict.
    fn memory_usage(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.shared.check_open()?;
        let mut u = std::mem::MaybeUninit::<qjs::JSMemoryUsage>::zeroed();
        unsafe { qjs::JS_ComputeMemoryUsage(self.shared.rt.get(), u.as_mut_ptr()) };
        let u = unsafe { u.assume_init() };
        let d = PyDict::new(py);
        d.set_item("malloc_size", u.malloc_size)?;
        d.set_item("malloc_limit", u.malloc_limit)?;
        d.set_item("memory_used_size", u.memory_used_size)?;
        d.set_item("obj_count", u.obj_count)?;
        Ok(d.unbind())
    }

    /// Run the garbage collector.
    fn gc(&self) -> PyResult<()> {
        self.shared.check_open()?;
        if self.shared.depth.get() == 0 {
            unsafe { qjs::JS_RunGC(self.shared.rt.get()) };
        }
        Ok(())
    }

    /// Free the runtime now. Handles still held by Python are released first and fail cleanly
    /// afterwards. Not allowed while JS is running.
    fn close(&mut self) -> PyResult<()> {
        if self.shared.depth.get() > 0 {
            return Err(PyRuntimeError::new_err("cannot close a JS runtime while JS is running"));
        }
        self.shutdown();
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.shared.closed.get()
    }

    /// Convert a value through JS and back (a test aid for the conversion rules).
    fn roundtrip(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let _entry = Entry::new(&self.shared)?;
        let v = from_py(py, &self.shared, value, 0)?;
        let out = to_py(py, &self.shared, v, 0);
        unsafe { qjs::JS_FreeValue(self.shared.ctx.get(), v) };
        out
    }
}

impl Runtime {
    fn shutdown(&mut self) {
        if self.shared.closed.get() {
            return;
        }
        self.shared.free_all();
        self.shared.closed.set(true);
        if let Some(rt) = &self.runtime {
            rt.set_interrupt_handler(None);
        }
        self.context.take();
        self.runtime.take();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.shared.depth.get() == 0 {
            self.shutdown();
        }
    }
}
