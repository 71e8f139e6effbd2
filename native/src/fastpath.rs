//! `FastCalls`: the native call path. A run of `RG.FCALL` / `TFCALL` of registered sync
//! functions is taken straight from a client's request parser and answered into its output
//! buffer, with no Python object per call (`jshost/fastpath.py` is its one user; the boundary is
//! drawn in docs/architecture.md).
//!
//! It knows no RedisGears policy. The host fills the table (library + function → the JS
//! function, its flags, whether its arguments are raw, whether it may run while the store is
//! out of memory) and may close the path (`open`); it hands over its own callables for everything
//! around a call (`enter` / `exit` of the atomic section, which give the token; `outcome` for
//! any result this module does not encode itself; `job_errors`; `overrun` under the `kill`
//! policy). A command that is anything but a plain call of a registered function (unknown,
//! malformed, too few arguments, non-UTF-8 arguments, refused while out of memory) is handed
//! back as it was parsed, before anything ran: Python answers it, errors included. Once a call
//! has run, JS never runs again for it: an exception, a promise, an object, a float that is not
//! an int32, a value over the value limit… go to `outcome` *as that outcome* (the value
//! converted to Python as `JSFunction.__call__` would, or the exception it would raise).
//! Only strings, int32 numbers, booleans, null and ArrayBuffers are encoded here.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList};
use pyo3::PyTraverseError;
use rquickjs::qjs;

use crate::convert::{value_to_py, ELEMENT_COST};
use crate::errors::take_exception;
use crate::handles::JSFunction;
use crate::resp::{append_bytes, encode_reply, RequestParser};
use crate::runtime::run_pending_jobs;
use crate::shared::{Entry, Shared, UNDEFINED};

/// A registered function, as the host described it.
struct Target {
    shared: Rc<Shared>,
    /// The prelude's `invokeSync(fn, token, args)` and the function: kept alive by these handles.
    invoke: Py<JSFunction>,
    invoke_slot: usize,
    func: Py<JSFunction>,
    func_slot: usize,
    flags: Py<PyAny>,
    raw: bool,
    oom_exempt: bool,
    /// The host's library object, handed back to its callables.
    lib: Py<PyAny>,
}

/// The host's callables (see the module docstring).
struct Hooks {
    enter: Py<PyAny>,
    exit: Py<PyAny>,
    outcome: Py<PyAny>,
    job_errors: Py<PyAny>,
    overrun: Py<PyAny>,
}

/// What one call gave.
enum Outcome {
    /// The reply, encoded.
    Encoded(Vec<u8>),
    /// A value for the host's `outcome` (converted to Python), or the exception it raised.
    Value(Py<PyAny>),
    Error(PyErr),
}

/// A call the table can run: which function, and where its keys and arguments start.
struct Plan {
    target: Rc<Target>,
    first_arg: usize,
    tf: bool,
}

/// Library + function (their UTF-8 names) → what the host registered.
type Table = HashMap<(Vec<u8>, Vec<u8>), Rc<Target>>;

/// The table of the native call path (see the module docstring).
#[pyclass(unsendable, module = "jshost._engine")]
pub struct FastCalls {
    table: RefCell<Table>,
    hooks: RefCell<Option<Hooks>>,
    open: Cell<bool>,
    /// Which command the last run ran last: 0 none, 1 `RG.FCALL`, 2 `TFCALL`.
    last: Cell<u8>,
    /// Calls run here so far.
    ran: Cell<u64>,
    /// A command with an argument that starts with this goes to Python (its checks of
    /// jshost's own keys).
    handback_prefix: Vec<u8>,
}

#[pymethods]
impl FastCalls {
    #[new]
    fn new(
        enter: Py<PyAny>,
        exit: Py<PyAny>,
        outcome: Py<PyAny>,
        job_errors: Py<PyAny>,
        overrun: Py<PyAny>,
        handback_prefix: &[u8],
    ) -> Self {
        Self {
            handback_prefix: handback_prefix.to_vec(),
            table: RefCell::new(HashMap::new()),
            hooks: RefCell::new(Some(Hooks { enter, exit, outcome, job_errors, overrun })),
            open: Cell::new(true),
            last: Cell::new(0),
            ran: Cell::new(0),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(hooks) = self.hooks.try_borrow() {
            if let Some(h) = hooks.as_ref() {
                for f in [&h.enter, &h.exit, &h.outcome, &h.job_errors, &h.overrun] {
                    visit.call(f)?;
                }
            }
        }
        if let Ok(table) = self.table.try_borrow() {
            for t in table.values() {
                visit.call(&t.invoke)?;
                visit.call(&t.func)?;
                visit.call(&t.flags)?;
                visit.call(&t.lib)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Ok(mut table) = self.table.try_borrow_mut() {
            table.clear();
        }
        if let Ok(mut hooks) = self.hooks.try_borrow_mut() {
            *hooks = None;
        }
    }

    /// Register `library`.`function`: `invoke` is the prelude's `invokeSync` of its runtime,
    /// `func` the function; `flags` is given to `enter` as it is.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        library: &str,
        function: &str,
        invoke: Bound<'_, JSFunction>,
        func: Bound<'_, JSFunction>,
        flags: Py<PyAny>,
        raw: bool,
        oom_exempt: bool,
        lib: Py<PyAny>,
    ) -> PyResult<()> {
        let (shared, invoke_slot) = {
            let base = invoke.borrow();
            let base = base.as_super();
            base.shared.check_open()?;
            (base.shared.clone(), base.slot)
        };
        let func_slot = {
            let base = func.borrow();
            let base = base.as_super();
            if !Rc::ptr_eq(&base.shared, &shared) {
                return Err(pyo3::exceptions::PyValueError::new_err("the function is of another runtime"));
            }
            base.slot
        };
        let target = Target {
            shared,
            invoke: invoke.unbind(),
            invoke_slot,
            func: func.unbind(),
            func_slot,
            flags,
            raw,
            oom_exempt,
            lib,
        };
        let key = (library.as_bytes().to_vec(), function.as_bytes().to_vec());
        self.table.borrow_mut().insert(key, Rc::new(target));
        Ok(())
    }

    /// Forget every function of `library`.
    fn remove_library(&self, library: &str) {
        self.table.borrow_mut().retain(|(lib, _), _| lib != library.as_bytes());
    }

    /// Forget everything.
    fn clear(&self) {
        self.table.borrow_mut().clear();
    }

    /// How many functions are registered.
    fn __len__(&self) -> usize {
        self.table.borrow().len()
    }

    /// Whether calls may run here (an off switch for the host and the tests).
    #[getter]
    fn get_open(&self) -> bool {
        self.open.get()
    }

    #[setter]
    fn set_open(&self, open: bool) {
        self.open.set(open);
    }

    /// Which command the last run ran last: 0 none, 1 `RG.FCALL`, 2 `TFCALL`.
    #[getter]
    fn last(&self) -> u8 {
        self.last.get()
    }

    /// How many calls ran here so far.
    #[getter]
    fn ran(&self) -> u64 {
        self.ran.get()
    }

    /// Run the calls at the head of `parser`'s buffer, replies appended to `out` (encoded for
    /// `protocol`), until a command this path does not take (returned, for Python to run
    /// first), no complete command is left, `out` holds more than `bound` bytes, or the gate
    /// closes (then None). Each call: `enter(flags, db, False)` gives the token; the deadline
    /// is `deadline` seconds (None: none); the call, its microtasks; `exit()`; with
    /// `kill_after`, `overrun(lib, seconds)` when it ran longer. `oom`: the store is out of
    /// memory (only functions registered `oom_exempt` run here then). A protocol error of the
    /// parser is raised, after the replies of the calls before it were appended; so is an
    /// exception of the host's callables, with no reply appended for the call it stopped.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (parser, out, protocol, db, oom, deadline, kill_after, bound))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        parser: &Bound<'py, RequestParser>,
        out: &Bound<'py, PyByteArray>,
        protocol: i64,
        db: i64,
        oom: bool,
        deadline: Option<f64>,
        kill_after: Option<f64>,
        bound: usize,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        self.last.set(0);
        let resp3 = protocol >= 3;
        let deadline = deadline.and_then(|s| {
            if s.is_finite() {
                Some(Duration::from_secs_f64(s.max(0.0)))
            } else {
                None
            }
        });
        let mut replies: Vec<u8> = Vec::new();
        let result = (|| {
            loop {
                if !self.open.get() || out.len() + replies.len() > bound {
                    return Ok(None);
                }
                let Some(args) = parser.borrow_mut().next_args(py)? else {
                    return Ok(None);
                };
                let Some(plan) = self.plan(&args, oom) else {
                    return Ok(Some(PyList::new(py, args.iter().map(|a| PyBytes::new(py, a)))?));
                };
                let mark = replies.len();
                if let Err(err) = self.call(py, &plan, &args, db, resp3, deadline, kill_after, &mut replies) {
                    replies.truncate(mark); // the caller answers this command (its error)
                    return Err(err);
                }
                self.last.set(if plan.tf { 2 } else { 1 });
                self.ran.set(self.ran.get() + 1);
            }
        })();
        append_bytes(out, &replies)?;
        result
    }
}

impl FastCalls {
    /// The call `args` stands for, if this path takes it (see the module docstring).
    fn plan(&self, args: &[Vec<u8>], oom: bool) -> Option<Plan> {
        let name = args[0].to_ascii_lowercase();
        let tf = match name.as_slice() {
            b"rg.fcall" => false,
            b"tfcall" => true,
            _ => return None,
        };
        let fixed = if tf { 2 } else { 3 };
        if args.len() < 1 + fixed || args[1..].iter().any(|a| a.starts_with(&self.handback_prefix)) {
            return None;
        }
        for word in &args[1..=fixed] {
            std::str::from_utf8(word).ok()?;
        }
        let (library, function) = if tf {
            let mut parts = args[1].split(|&b| b == b'.');
            (parts.next()?, parts.next()?)
        } else {
            (&args[1][..], &args[2][..])
        };
        let numkeys = &args[fixed];
        if numkeys.is_empty() || numkeys.len() >= 20 || !numkeys.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let numkeys: usize = std::str::from_utf8(numkeys).ok()?.parse().ok()?;
        let target = self.table.borrow().get(&(library.to_vec(), function.to_vec()))?.clone();
        let first_arg = 1 + fixed;
        if args.len() - first_arg < numkeys || (oom && !target.oom_exempt) {
            return None;
        }
        if !target.raw && args[first_arg..].iter().any(|a| std::str::from_utf8(a).is_err()) {
            return None;
        }
        Some(Plan { target, first_arg, tf })
    }

    /// One call, start to end, its reply appended to `replies`.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        py: Python<'_>,
        plan: &Plan,
        args: &[Vec<u8>],
        db: i64,
        resp3: bool,
        deadline: Option<Duration>,
        kill_after: Option<f64>,
        replies: &mut Vec<u8>,
    ) -> PyResult<()> {
        let target = &plan.target;
        let (enter, exit, outcome_hook, job_errors, overrun) = {
            let hooks = self.hooks.borrow();
            let h = hooks.as_ref().ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("FastCalls was cleared"))?;
            (
                h.enter.clone_ref(py),
                h.exit.clone_ref(py),
                h.outcome.clone_ref(py),
                h.job_errors.clone_ref(py),
                h.overrun.clone_ref(py),
            )
        };
        let token: i64 = enter.call1(py, (target.flags.clone_ref(py), db, false))?.extract(py)?;
        let shared = &target.shared;
        shared.deadline.set(deadline.map(|d| Instant::now() + d));
        let started = Instant::now();
        let result = (|| -> PyResult<()> {
            let mut outcome = invoke(py, target, token, &args[plan.first_arg..], resp3);
            if !matches!(outcome, Outcome::Error(_)) && shared.has_pending_jobs() {
                match run_pending_jobs(py, shared) {
                    Ok(errors) if errors.is_empty() => {}
                    Ok(errors) => {
                        job_errors.call1(py, (target.lib.clone_ref(py), errors))?;
                    }
                    Err(err) => outcome = Outcome::Error(err),
                }
            }
            match outcome {
                Outcome::Encoded(bytes) => replies.extend_from_slice(&bytes),
                Outcome::Value(value) => {
                    let reply = outcome_hook.call1(py, (target.lib.clone_ref(py), value, py.None()))?;
                    encode_reply(reply.bind(py), resp3, replies)?;
                }
                Outcome::Error(err) => {
                    let reply = outcome_hook.call1(py, (target.lib.clone_ref(py), py.None(), err.value(py)))?;
                    encode_reply(reply.bind(py), resp3, replies)?;
                }
            }
            Ok(())
        })();
        shared.deadline.set(None);
        let exited = exit.call0(py);
        if let Some(limit) = kill_after {
            let seconds = started.elapsed().as_secs_f64();
            if seconds > limit {
                overrun.call1(py, (target.lib.clone_ref(py), seconds))?;
            }
        }
        result.and(exited.map(|_| ()))
    }
}

/// Call the function through `invokeSync(fn, token, args)`; encode a plain result here.
fn invoke(py: Python<'_>, target: &Target, token: i64, args: &[Vec<u8>], resp3: bool) -> Outcome {
    let shared = &target.shared;
    let _entry = match Entry::new(shared) {
        Ok(entry) => entry,
        Err(err) => return Outcome::Error(err),
    };
    let ctx = shared.ctx.get();
    let array = match new_arguments(py, shared, args, target.raw) {
        Ok(array) => array,
        Err(err) => return Outcome::Error(err),
    };
    // SAFETY: live (`Entry` held); the BigInt is owned, freed below with the other arguments.
    let token = unsafe { qjs::JS_NewBigInt64(ctx, token) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(token) } {
        // SAFETY: live; `array` is owned and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, array) };
        return Outcome::Error(take_exception(py, shared));
    }
    // SAFETY: live; the function's slot holds a reference kept by its handle (in `target`); the
    // copy is owned, freed below.
    let func = unsafe { qjs::JS_DupValue(ctx, shared.get(target.func_slot)) };
    let mut argv = [func, token, array];
    // SAFETY: live; `invokeSync` is borrowed from its slot (kept by its handle); `argv` is owned
    // and alive through the call; the result is owned.
    let r = unsafe { qjs::JS_Call(ctx, shared.get(target.invoke_slot), UNDEFINED, 3, argv.as_mut_ptr()) };
    for v in argv {
        // SAFETY: live; each argument is owned and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, v) };
    }
    if shared.oom_stop_due() {
        return Outcome::Error(crate::handles::oom_stopped(shared, r));
    }
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(r) } {
        return Outcome::Error(take_exception(py, shared));
    }
    let outcome = match encode_plain(shared, r, resp3) {
        Some(bytes) => Outcome::Encoded(bytes),
        None => match value_to_py(py, shared, r) {
            Ok(value) => Outcome::Value(value),
            Err(err) => Outcome::Error(err),
        },
    };
    // SAFETY: live; `r` is owned (the call's result) and no longer used.
    unsafe { qjs::JS_FreeValue(ctx, r) };
    outcome
}

/// The arguments as a JS array: strings (valid UTF-8, checked by `plan`), or ArrayBuffers.
fn new_arguments(py: Python<'_>, shared: &Rc<Shared>, args: &[Vec<u8>], raw: bool) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    // SAFETY: live (the caller holds an `Entry`); the array is owned, the caller's.
    let array = unsafe { qjs::JS_NewArray(ctx) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(array) } {
        return Err(take_exception(py, shared));
    }
    for (i, arg) in args.iter().enumerate() {
        // SAFETY: live; `arg` outlives the call, which copies it; the value is owned.
        let v = unsafe {
            if raw {
                qjs::JS_NewArrayBufferCopy(ctx, arg.as_ptr(), arg.len() as _)
            } else {
                qjs::JS_NewStringLen(ctx, arg.as_ptr() as *const _, arg.len() as _)
            }
        };
        // SAFETY: live; `array` is owned; `JS_SetPropertyUint32` takes `v` (owned) even when it
        // fails; an exception value is never stored.
        let failed = unsafe { qjs::JS_IsException(v) || qjs::JS_SetPropertyUint32(ctx, array, i as u32, v) < 0 };
        if failed {
            // SAFETY: live; `array` is owned and no longer used.
            unsafe { qjs::JS_FreeValue(ctx, array) };
            return Err(take_exception(py, shared));
        }
    }
    Ok(array)
}

/// The reply of a plain value (string, int32 number, boolean, null, ArrayBuffer) exactly as the
/// host's conversion rules would make it; None for anything else, or a value over the value
/// limit (the host then sees it as usual, and the limit's error).
fn encode_plain(shared: &Shared, v: qjs::JSValue, resp3: bool) -> Option<Vec<u8>> {
    let fits = |len: usize| {
        let limit = shared.value_limit.get();
        limit == 0 || ELEMENT_COST.saturating_add(len) <= limit
    };
    let ctx = shared.ctx.get();
    // SAFETY: reads the tag only.
    let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(v) };
    let mut out = Vec::new();
    match tag {
        qjs::JS_TAG_INT if fits(0) => {
            // SAFETY: the payload getter of the tag just read.
            let n = unsafe { qjs::JS_VALUE_GET_INT(v) };
            out.extend_from_slice(format!(":{n}\r\n").as_bytes());
        }
        qjs::JS_TAG_FLOAT64 if fits(0) => {
            // SAFETY: the payload getter of the tag just read.
            let x = unsafe { qjs::JS_VALUE_GET_FLOAT64(v) };
            // An int32 whole Number (not -0) is an integer reply; any other is the host's.
            let whole = x.fract() == 0.0 && x >= i32::MIN as f64 && x <= i32::MAX as f64;
            if !whole || (x == 0.0 && x.is_sign_negative()) {
                return None;
            }
            out.extend_from_slice(format!(":{}\r\n", x as i32).as_bytes());
        }
        qjs::JS_TAG_BOOL if fits(0) => {
            // SAFETY: the payload getter of the tag just read.
            let b = unsafe { qjs::JS_VALUE_GET_BOOL(v) };
            out.extend_from_slice(match (resp3, b) {
                (true, true) => b"#t\r\n",
                (true, false) => b"#f\r\n",
                (false, true) => b":1\r\n",
                (false, false) => b":0\r\n",
            });
        }
        qjs::JS_TAG_NULL if fits(0) => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => {
            let mut len: usize = 0;
            // SAFETY: live (the caller holds an `Entry`); `v` is borrowed; `len` is a valid place.
            let p = unsafe { qjs::JS_ToCStringLen2(ctx, &mut len as *mut usize as *mut _, v, false) };
            if p.is_null() {
                drop_exception(ctx);
                return None;
            }
            if fits(len) {
                // SAFETY: `p` is QuickJS's buffer of `len` bytes, alive until freed below. Its
                // bytes are what the host's reply would be: a lone surrogate is written in its
                // 3-byte form, which Python reads back (surrogatepass) and writes again alike.
                bulk(&mut out, unsafe { std::slice::from_raw_parts(p as *const u8, len) });
            }
            // SAFETY: live; `p` came from `JS_ToCStringLen2` and is no longer used.
            unsafe { qjs::JS_FreeCString(ctx, p) };
            if out.is_empty() {
                return None;
            }
        }
        // SAFETY: reads the object's class only.
        qjs::JS_TAG_OBJECT if unsafe { qjs::JS_IsArrayBuffer(v) } => {
            let mut size: qjs::size_t = 0;
            // SAFETY: live; `v` is borrowed; `size` is a valid place.
            let p = unsafe { qjs::JS_GetArrayBuffer(ctx, &mut size, v) };
            if p.is_null() {
                drop_exception(ctx); // detached: the host's rules say what that gives
                return None;
            }
            let size = size as usize;
            if !fits(size) {
                return None;
            }
            // SAFETY: `p` points to the buffer's `size` bytes; no JS runs before they are copied.
            bulk(&mut out, unsafe { std::slice::from_raw_parts(p, size) });
        }
        _ => return None,
    }
    Some(out)
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Drop the exception a failed read left pending (the host's conversion meets it again).
fn drop_exception(ctx: *mut qjs::JSContext) {
    // SAFETY: live (the caller holds an `Entry`); the value taken is owned and freed at once.
    unsafe {
        let e = qjs::JS_GetException(ctx);
        qjs::JS_FreeValue(ctx, e);
    }
}
