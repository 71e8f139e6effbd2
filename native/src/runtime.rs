//! `Runtime`: one QuickJS runtime and its single context (one per library).
//!
//! The runtime is made with QuickJS's C API directly (`JS_NewRuntime2`): its memory goes through
//! the malloc functions below, which keep the heap account in `Shared` and enforce the memory
//! limit themselves (see `shared::Heap`), so that running out of memory throws a real
//! `InternalError: out of memory`.

use std::ffi::{c_void, CString};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rquickjs::qjs;

use crate::convert::{from_py, value_to_py};
use crate::errors::{exception_to_pyerr, take_exception};
use crate::handles::{finish, new_handle, new_script};
use crate::shared::{Entry, Pool, Shared, HELPER_COUNT};

const HELPERS_JS: &str = include_str!("helpers.js");

/// Run queued jobs until none is left (`Runtime.run_jobs`): the JSErrors raised by jobs; a
/// deadline raises JSTerminated and leaves the remaining jobs queued.
pub fn run_pending_jobs<'py>(py: Python<'py>, shared: &Rc<Shared>) -> PyResult<Bound<'py, PyList>> {
    let _entry = Entry::new(shared)?;
    let errors = PyList::empty(py);
    let rt = shared.rt.get();
    // SAFETY: live (`Entry` held).
    while unsafe { qjs::JS_IsJobPending(rt) } {
        let mut job_ctx: *mut qjs::JSContext = std::ptr::null_mut();
        // SAFETY: live (`Entry` held); `job_ctx` is a valid place for QuickJS to write to.
        if unsafe { qjs::JS_ExecutePendingJob(rt, &mut job_ctx) } < 0 {
            // SAFETY: live; an exception is pending (the job failed); the value is owned, freed
            // below.
            let exc = unsafe { qjs::JS_GetException(shared.ctx.get()) };
            let err = exception_to_pyerr(py, shared, exc);
            // SAFETY: live; `exc` is owned (taken above) and no longer used.
            unsafe { qjs::JS_FreeValue(shared.ctx.get(), exc) };
            if err.is_instance_of::<crate::errors::JSTerminated>(py) {
                return Err(err);
            }
            errors.append(err.value(py))?;
        }
        if shared.oom_stop_due() {
            shared.interrupted.set(false);
            return Err(crate::errors::oom_stop());
        }
    }
    Ok(errors)
}

#[pyclass(unsendable, module = "jshost._engine")]
pub struct Runtime {
    shared: Rc<Shared>,
}

/// A memory budget for several runtimes together: give it to each `Runtime(pool=...)`. Every
/// allocation of any of them is refused once their heaps (and external charges) add up to
/// `limit` bytes (0 = none), as a runtime's own `memory_limit` is.
#[pyclass(module = "jshost._engine")]
pub struct MemoryPool {
    pub inner: Arc<Pool>,
}

#[pymethods]
impl MemoryPool {
    #[new]
    #[pyo3(signature = (limit=0))]
    fn new(limit: usize) -> Self {
        let inner = Arc::new(Pool::default());
        inner.limit.store(limit, Relaxed);
        MemoryPool { inner }
    }

    /// The limit in bytes (0 = none); lowering it frees nothing, it refuses what comes next.
    #[getter]
    fn get_limit(&self) -> usize {
        self.inner.limit.load(Relaxed)
    }

    #[setter]
    fn set_limit(&self, limit: usize) {
        self.inner.limit.store(limit, Relaxed);
    }

    /// Bytes held by the runtimes of this pool, together. jshost itself does not read it: the
    /// tests do, to see that the pool's account holds (nothing else shows it).
    #[getter]
    fn used(&self) -> usize {
        self.inner.used.load(Relaxed)
    }
}

// --- the heap ---------------------------------------------------------------------------------

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(count: usize, size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    #[cfg(target_os = "macos")]
    #[link_name = "malloc_size"]
    fn malloc_usable_size(ptr: *const c_void) -> usize;
    #[cfg(not(target_os = "macos"))]
    fn malloc_usable_size(ptr: *const c_void) -> usize;
}

/// The `Shared` an allocation belongs to (the malloc functions' opaque pointer; it outlives the
/// JSRuntime, which is freed in `Runtime::shutdown`).
///
/// # Safety
/// `opaque` is the pointer `Runtime::new` gave `JS_NewRuntime2`, and that runtime is alive.
unsafe fn shared_of<'a>(opaque: *mut c_void) -> &'a Shared {
    &*(opaque as *const Shared)
}

/// Whether the heap may grow by `extra` bytes (see `shared::Heap`).
#[inline]
fn admit(shared: &Shared, extra: usize) -> bool {
    if shared.heap.admit(extra) {
        return true;
    }
    shared.oom_hit.set(true);
    shared.refused();
    false
}

unsafe extern "C" fn js_calloc(opaque: *mut c_void, count: qjs::size_t, size: qjs::size_t) -> *mut c_void {
    let shared = shared_of(opaque);
    let heap = &shared.heap;
    let Some(total) = (count as usize).checked_mul(size as usize) else { return std::ptr::null_mut() };
    if !admit(shared, total) {
        return std::ptr::null_mut();
    }
    let p = calloc(count as usize, size as usize);
    if !p.is_null() {
        heap.account(malloc_usable_size(p), 0);
    }
    p
}

unsafe extern "C" fn js_malloc(opaque: *mut c_void, size: qjs::size_t) -> *mut c_void {
    let shared = shared_of(opaque);
    let heap = &shared.heap;
    if !admit(shared, size as usize) {
        return std::ptr::null_mut();
    }
    let p = malloc(size as usize);
    if !p.is_null() {
        heap.account(malloc_usable_size(p), 0);
    }
    p
}

unsafe extern "C" fn js_free(opaque: *mut c_void, ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let heap = &shared_of(opaque).heap;
    heap.account(0, malloc_usable_size(ptr));
    free(ptr);
}

unsafe extern "C" fn js_realloc(opaque: *mut c_void, ptr: *mut c_void, size: qjs::size_t) -> *mut c_void {
    let shared = shared_of(opaque);
    let heap = &shared.heap;
    let old = if ptr.is_null() { 0 } else { malloc_usable_size(ptr) };
    if size as usize > old && !admit(shared, size as usize - old) {
        return std::ptr::null_mut();
    }
    let p = realloc(ptr, size as usize);
    if !p.is_null() {
        heap.account(malloc_usable_size(p), old);
    } else if size == 0 {
        heap.account(0, old);
    }
    p
}

unsafe extern "C" fn js_usable_size(ptr: *const c_void) -> qjs::size_t {
    if ptr.is_null() {
        0
    } else {
        malloc_usable_size(ptr) as qjs::size_t
    }
}

static MALLOC_FUNCTIONS: qjs::JSMallocFunctions = qjs::JSMallocFunctions {
    js_calloc: Some(js_calloc),
    js_malloc: Some(js_malloc),
    js_free: Some(js_free),
    js_realloc: Some(js_realloc),
    js_malloc_usable_size: Some(js_usable_size),
};

/// QuickJS asks this every so often while JS runs: true stops it (uncatchably).
unsafe extern "C" fn interrupt_handler(_rt: *mut qjs::JSRuntime, opaque: *mut c_void) -> std::ffi::c_int {
    let shared = &*(opaque as *const Shared);
    if shared.stop_on_oom.get() && shared.oom_hit.get() {
        shared.interrupted.set(true);
        return 1;
    }
    match shared.deadline.get() {
        Some(d) if Instant::now() >= d => {
            shared.interrupted.set(true);
            1
        }
        _ => 0,
    }
}

impl Runtime {
    fn global(&self) -> qjs::JSValue {
        // SAFETY: live (callers checked `closed`); the new reference is the caller's to own.
        unsafe { qjs::JS_GetGlobalObject(self.shared.ctx.get()) }
    }

    fn eval_raw(&self, code: &str, filename: &str, flags: u32) -> PyResult<qjs::JSValue> {
        let mut src = Vec::with_capacity(code.len() + 1);
        src.extend_from_slice(code.as_bytes());
        src.push(0); // QuickJS wants a NUL after the input, even though it is given the length.
        let fname = CString::new(filename.replace('\0', " ")).expect("NULs were replaced");
        // SAFETY: live (callers hold an `Entry`); `src` ends with the NUL QuickJS wants and
        // outlives the call, as does `fname`.
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
        // SAFETY: reads the tag only.
        if unsafe { qjs::JS_IsException(arr) } {
            return Err(take_exception(py, &self.shared));
        }
        let ctx = self.shared.ctx.get();
        let mut helpers = self.shared.helpers.borrow_mut();
        for i in 0..HELPER_COUNT {
            // SAFETY: live (`Entry` held); `arr` is owned; each item read is a new reference, owned
            // by `helpers`.
            helpers.push(unsafe { qjs::JS_GetPropertyUint32(ctx, arr, i as u32) });
        }
        // SAFETY: live; `arr` is owned and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, arr) };
        // SAFETY: live; `probe` is owned and freed here; the prototype and the atom are new
        // references, owned by `Shared` (freed by `free_all`).
        unsafe {
            let probe = qjs::JS_NewObject(ctx);
            if qjs::JS_IsException(probe) {
                return Err(take_exception(py, &self.shared));
            }
            self.shared.object_class.set(qjs::JS_GetClassID(probe));
            self.shared.object_proto.set(qjs::JS_GetPrototype(ctx, probe));
            qjs::JS_FreeValue(ctx, probe);
            self.shared.constructor_atom.set(qjs::JS_NewAtom(ctx, c"constructor".as_ptr()));
        }
        Ok(())
    }
}

#[pymethods]
impl Runtime {
    /// A new runtime with one context holding QuickJS-ng's standard built-ins: ECMAScript,
    /// plus `InternalError`, `queueMicrotask`, `DOMException`, `atob`, `btoa` and `performance`
    /// (no I/O, no module loader, no timers). `memory_limit`: the heap limit in bytes (0 = none;
    /// once an allocation has been refused, a call into JS may use up to 256 KiB more, so that
    /// the `InternalError: out of memory` can be thrown); `max_stack_size` in bytes of C stack
    /// (0 = none; keep it well below the thread's real stack, or deep recursion crashes the
    /// process); `pool`: a `MemoryPool` whose budget this runtime shares with others;
    /// `stop_on_oom`: a refused allocation stops JS uncatchably (`JSTerminated`, and
    /// `out_of_memory` tells why) rather than throwing a catchable `InternalError`.
    #[new]
    #[pyo3(signature = (memory_limit=0, max_stack_size=1_048_576, pool=None, stop_on_oom=false))]
    fn new(
        py: Python<'_>,
        memory_limit: usize,
        max_stack_size: usize,
        pool: Option<PyRef<'_, MemoryPool>>,
        stop_on_oom: bool,
    ) -> PyResult<Self> {
        let shared = Rc::new(Shared::new());
        *shared.heap.pool.borrow_mut() = pool.map(|p| p.inner.clone());
        let opaque = Rc::as_ptr(&shared) as *mut c_void;
        // SAFETY: `MALLOC_FUNCTIONS` is static; `opaque` points to `shared`, which the runtime's
        // owner (`this`, below) keeps alive until after `JS_FreeRuntime` in `shutdown`.
        let rt = unsafe { qjs::JS_NewRuntime2(&MALLOC_FUNCTIONS, opaque) };
        if rt.is_null() {
            return Err(PyRuntimeError::new_err("could not create a JS runtime"));
        }
        shared.rt.set(rt);
        // From here on `Runtime::drop` frees whatever was made.
        let this = Runtime { shared };
        let shared = &this.shared;
        shared.heap.limit.set(memory_limit);
        shared.stop_on_oom.set(stop_on_oom);
        shared.max_stack.set(max_stack_size);
        // SAFETY: `rt` was just made and is live; `opaque` is the same `Shared` as above.
        unsafe {
            qjs::JS_SetMaxStackSize(rt, max_stack_size as _);
            qjs::JS_SetInterruptHandler(rt, Some(interrupt_handler), opaque);
        }
        // The ECMAScript built-ins (QuickJS-ng's standard set; no I/O, modules or timers).
        // SAFETY: `rt` is live.
        let ctx = unsafe { qjs::JS_NewContext(rt) };
        if ctx.is_null() {
            return Err(PyRuntimeError::new_err("could not create a JS context"));
        }
        shared.ctx.set(ctx);
        crate::callbacks::register_class(&this.shared)?;
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
        // SAFETY: reads the tag only.
        if unsafe { qjs::JS_IsException(r) } {
            return Err(take_exception(py, &self.shared));
        }
        new_script(py, &self.shared, r)
    }

    /// The global object as a handle.
    #[getter]
    fn globals(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.shared.check_open()?;
        new_handle(py, &self.shared, self.global())
    }

    /// Run queued jobs (promise reactions) until none is left. Returns the JSErrors raised by
    /// jobs; a deadline raises JSTerminated and leaves the remaining jobs queued.
    fn run_jobs(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        Ok(run_pending_jobs(py, &self.shared)?.unbind())
    }

    /// Whether an allocation was refused during the last entry into JS (the current one, while
    /// JS runs): with `stop_on_oom`, why it stopped.
    #[getter]
    fn out_of_memory(&self) -> bool {
        self.shared.oom_hit.get()
    }

    /// Bytes the heap holds now, and what is charged for it outside (cheap: the binding's own
    /// account, no walk over the heap).
    #[getter]
    fn heap_size(&self) -> usize {
        self.shared.heap.used.get().saturating_add(self.shared.heap.external.get())
    }

    /// Set the heap limit in bytes (0 = none), for the next allocations.
    fn set_memory_limit(&self, limit: usize) -> PyResult<()> {
        self.shared.check_open()?;
        self.shared.heap.limit.set(limit);
        Ok(())
    }

    /// Whether promise jobs are waiting to run.
    #[getter]
    fn has_pending_jobs(&self) -> PyResult<bool> {
        self.shared.check_open()?;
        // SAFETY: live (`check_open` above).
        Ok(unsafe { qjs::JS_IsJobPending(self.shared.rt.get()) })
    }

    /// Forget that JS was stopped at its deadline, inside a Python callback that caught the
    /// nested `JSTerminated`: JS may run again from that callback on (set a new deadline first),
    /// and what the callback raises or returns reaches JS as usual instead of stopping it too.
    fn clear_interrupt(&self) -> PyResult<()> {
        self.shared.check_open()?;
        self.shared.interrupted.set(false);
        Ok(())
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

    /// The most one value leaving JS may cost, in bytes (0 = no limit): a value converted to
    /// Python (a result, the arguments of a Python callable) counts the bytes of its strings
    /// and buffers and `ELEMENT_COST` for each value in it; past the limit the conversion stops
    /// with `JSValueTooLarge`. Conversions also stop at the deadline (`JSTerminated`).
    /// `text` is the error's message (default: a plain one).
    #[pyo3(signature = (limit, text=None))]
    fn set_value_limit(&self, limit: usize, text: Option<String>) -> PyResult<()> {
        self.shared.check_open()?;
        self.shared.value_limit.set(limit);
        *self.shared.value_error.borrow_mut() = text;
        Ok(())
    }

    /// Count `size` bytes kept outside the heap for this runtime against its memory limit (and
    /// its pool's), until `release(size)`. Returns False, charging nothing, when they do not
    /// fit under the limit (unless `force`: what is already held is charged all the same).
    #[pyo3(signature = (size, force=false))]
    fn charge(&self, size: usize, force: bool) -> PyResult<bool> {
        self.shared.check_open()?;
        if !force && !self.shared.heap.admit_external(size) {
            return Ok(false);
        }
        self.shared.heap.charge_external(size, 0);
        Ok(true)
    }

    /// Give back bytes counted by `charge`.
    fn release(&self, size: usize) -> PyResult<()> {
        if !self.shared.closed.get() {
            self.shared.heap.charge_external(0, size);
        }
        Ok(())
    }

    /// The heap: `heap_size` (bytes held from the system allocator, what the limit applies to),
    /// `malloc_limit`, and QuickJS's own account (`JS_ComputeMemoryUsage`): `malloc_size`,
    /// `malloc_count` (live blocks), `memory_used_size`, `obj_count`.
    fn memory_usage(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.shared.check_open()?;
        let mut u = std::mem::MaybeUninit::<qjs::JSMemoryUsage>::zeroed();
        // SAFETY: live (`check_open` above); `u` is a valid place for the whole struct.
        unsafe { qjs::JS_ComputeMemoryUsage(self.shared.rt.get(), u.as_mut_ptr()) };
        // SAFETY: `u` was zeroed (a valid `JSMemoryUsage`: plain integers) and then filled in.
        let u = unsafe { u.assume_init() };
        let d = PyDict::new(py);
        d.set_item("heap_size", self.shared.heap.used.get())?;
        d.set_item("external_size", self.shared.heap.external.get())?;
        d.set_item("malloc_limit", self.shared.heap.limit.get())?;
        d.set_item("malloc_size", u.malloc_size)?;
        d.set_item("malloc_count", u.malloc_count)?;
        d.set_item("memory_used_size", u.memory_used_size)?;
        d.set_item("obj_count", u.obj_count)?;
        Ok(d.unbind())
    }

    /// Run the garbage collector.
    fn gc(&self) -> PyResult<()> {
        self.shared.check_open()?;
        if self.shared.depth.get() == 0 {
            // SAFETY: live (`check_open` above); no JS runs (`depth == 0`), so no value is in use
            // by a frame.
            unsafe { qjs::JS_RunGC(self.shared.rt.get()) };
            self.shared.release_dead_callables();
        }
        Ok(())
    }

    /// Free the runtime now. Handles still held by Python are released first and fail cleanly
    /// afterwards. Not allowed while JS is running.
    fn close(&self) -> PyResult<()> {
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

    /// Convert a value through JS and back. jshost itself never calls it: it is the test and
    /// benchmark aid for the conversion rules (`tests/test_engine.py`, `bench/bench_engine.py`),
    /// both directions with no JS code run in between.
    fn roundtrip(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let _entry = Entry::new(&self.shared)?;
        let v = from_py(py, &self.shared, value, 0)?;
        let out = value_to_py(py, &self.shared, v);
        // SAFETY: live (`Entry` held); `v` is owned (from `from_py`) and no longer used.
        unsafe { qjs::JS_FreeValue(self.shared.ctx.get(), v) };
        out
    }
}

impl Runtime {
    fn shutdown(&self) {
        let shared = &self.shared;
        if shared.closed.get() {
            return;
        }
        shared.closed.set(true);
        let (rt, ctx) = (shared.rt.get(), shared.ctx.get());
        if rt.is_null() {
            return;
        }
        shared.free_all();
        // SAFETY: live (rt is not null and `closed` was just set: nothing enters any more); every
        // value Python held was freed by `free_all`, so the runtime can be freed.
        unsafe {
            qjs::JS_SetInterruptHandler(rt, None, std::ptr::null_mut());
            if !ctx.is_null() {
                qjs::JS_FreeContext(ctx);
            }
            // Frees every remaining object; the finalizers of Python callables hand their
            // Python references to `dead_callables`.
            qjs::JS_FreeRuntime(rt);
        }
        shared.ctx.set(std::ptr::null_mut());
        shared.rt.set(std::ptr::null_mut());
        // Whatever the account still shows (external charges) leaves the pool with the runtime.
        let heap = &shared.heap;
        heap.account(0, heap.used.get());
        heap.charge_external(0, heap.external.get());
        shared.release_dead_callables();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.shared.depth.get() == 0 {
            self.shutdown();
        }
    }
}
