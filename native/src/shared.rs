//! State shared by a runtime and every handle into it.
//!
//! The pieces Python can reach without holding the runtime (deadline, handle slots, the
//! "closed" flag) live here, behind an `Rc`, so that arming a deadline or dropping a handle never
//! needs the runtime, and a handle that outlives `close()` fails cleanly instead of touching freed
//! memory. Everything is single-threaded: the pyclasses are `unsendable`.
//!
//! `Shared` also keeps the heap account: the runtime allocates through `runtime.rs`'s malloc
//! functions, which enforce the memory limit here (see `Heap`).
//!
//! # Safety
//!
//! Every `unsafe` block of the crate calls QuickJS's C API or reads a `JSValue`, and rests on
//! these rules; its `// SAFETY:` note names the ones it uses and anything more it needs:
//! - **live**: `rt` and `ctx` point to the live runtime and its context from `Runtime::new` until
//!   `Runtime::shutdown`, which sets `closed`, frees them and nulls the pointers; it does not run
//!   while JS runs (`depth > 0`). Every way in from Python checks `closed` first (`Entry::new`,
//!   `check_open`, `JSObject::value`), and QuickJS calls back into the crate (malloc functions,
//!   interrupt handler, finalizers, Python functions) only while its runtime is alive.
//! - **one thread**: the pyclasses are `unsendable` and JS runs only on the thread holding the
//!   GIL, so no two calls into one runtime overlap except by nesting (a callback into Python).
//! - **owned / borrowed**: each `JSValue` at hand is either *owned* (one reference, freed once or
//!   handed to a function that consumes it — QuickJS's `JS_SetProperty*`, `JS_DefineProperty*`,
//!   `JS_Throw`, `JS_EvalFunction` and `JS_FreeValue*` do) or *borrowed* (from a slot, a helper,
//!   an argument list: valid while its owner holds it, never freed here).
//! - **tag**: `JS_VALUE_GET_*` and the `JS_Is*` tests that look at the tag only read the
//!   value's fields (sound for any `JSValue`); the payload getters are used on the tag they read.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use rquickjs::qjs;

/// Indexes into the helper array built by `helpers.js`.
#[derive(Clone, Copy)]
pub enum Helper {
    ForIn = 0,
    MapItems = 1,
    SetItems = 2,
    Unbox = 3,
    Box = 4,
    MakeView = 5,
    ViewInfo = 6,
    MakeMap = 7,
    MakeSet = 8,
    BigFromHex = 9,
    BigToHex = 10,
    SafeString = 11,
    MakeError = 12,
    PromiseThen = 13,
}
pub const HELPER_COUNT: usize = 14;

/// Beyond its limit, a runtime may hold at most this much more: the room QuickJS needs to build
/// the `InternalError: out of memory` it throws after a refused allocation (with no room at all,
/// it throws `null`), and the binding to report it.
pub const OOM_RESERVE: usize = 256 * 1024;

/// After each refused allocation, this many allocations may use `OOM_RESERVE`. QuickJS ignores
/// some failures (a stack trace it could not build, say) and carries on: the next refusal then
/// grants its own allowance instead of finding the reserve used up.
pub const OOM_GRACE_ALLOCATIONS: u32 = 32;

/// Extra C stack the binding allows itself while it turns an exception into a Python error (or
/// a Python error into a JS one): a stack overflow is reported at the stack limit, where any JS
/// call — even the binding's own `String(e)` — would overflow again.
pub const ERROR_STACK_RESERVE: usize = 64 * 1024;

/// A memory budget shared by several runtimes (jshost's `js-maxmemory`): every allocation of
/// each of them is admitted only while the sum of their heaps stays under `limit` (0 = none).
/// Only the thread that runs JS (holding the GIL) touches it: the atomics are plain loads and
/// stores, there so that the Python object holding the pool may be freed on any thread.
#[derive(Default)]
pub struct Pool {
    pub used: AtomicUsize,
    pub limit: AtomicUsize,
}

impl Pool {
    #[inline]
    pub fn add(&self, grow: usize, shrink: usize) {
        let used = self.used.load(Relaxed);
        self.used.store(used.saturating_add(grow).saturating_sub(shrink), Relaxed);
    }
}

/// The heap account of one runtime, kept by its malloc functions (`runtime.rs`), which enforce
/// the memory limit themselves: QuickJS's own limit is left off, for when it refuses an
/// allocation QuickJS cannot allocate the error it throws either.
pub struct Heap {
    /// Bytes held (usable sizes of the live blocks, as the system allocator reports them; small
    /// blocks come from QuickJS's 4 KiB arenas).
    pub used: Cell<usize>,
    /// 0 = no limit.
    pub limit: Cell<usize>,
    /// Allocations still allowed into `OOM_RESERVE` since the last refusal.
    grace: Cell<u32>,
    /// An allocation was refused during the current outermost entry into JS.
    pub refused: Cell<bool>,
    /// QuickJS's GC threshold, saved while automatic GC is held off after a refusal (see
    /// `Shared::refused`).
    saved_gc_threshold: Cell<Option<qjs::size_t>>,
    /// Bytes charged for what the runtime keeps outside its heap (the host's queued jobs): they
    /// count against the limits as if JS had allocated them.
    pub external: Cell<usize>,
    /// The budget this runtime shares with others, if any.
    pub pool: RefCell<Option<Arc<Pool>>>,
}

impl Heap {
    /// Whether the heap may grow by `extra` bytes. A refusal grants the next
    /// `OOM_GRACE_ALLOCATIONS` allocations room in `OOM_RESERVE`.
    #[inline]
    pub fn admit(&self, extra: usize) -> bool {
        let limit = self.limit_now();
        if limit == 0 {
            return true;
        }
        let want = self.used.get().saturating_add(self.external.get()).saturating_add(extra);
        if want <= limit {
            return true;
        }
        let grace = self.grace.get();
        if grace > 0 && want <= limit.saturating_add(OOM_RESERVE) {
            self.grace.set(grace - 1);
            return true;
        }
        self.grace.set(OOM_GRACE_ALLOCATIONS);
        self.refused.set(true);
        false
    }

    /// The limit in force now: the runtime's own, or less when the shared pool has less room
    /// left for it (0 = none).
    #[inline]
    fn limit_now(&self) -> usize {
        let own = self.limit.get();
        let pool = self.pool.borrow();
        let Some(pool) = pool.as_ref() else { return own };
        let pool_limit = pool.limit.load(Relaxed);
        if pool_limit == 0 {
            return own;
        }
        // What the others use, plus the whole pool limit, is this runtime's room.
        let mine = self.used.get().saturating_add(self.external.get());
        let others = pool.used.load(Relaxed).saturating_sub(mine);
        let room = pool_limit.saturating_sub(others).max(1);
        if own == 0 { room } else { own.min(room) }
    }

    /// Record `delta` more (or fewer) bytes in use, in the pool too.
    #[inline]
    pub fn account(&self, grow: usize, shrink: usize) {
        self.used.set(self.used.get().saturating_add(grow).saturating_sub(shrink));
        if let Some(pool) = self.pool.borrow().as_ref() {
            pool.add(grow, shrink);
        }
    }

    /// Whether `size` more bytes kept outside the heap fit under the limits (no grace).
    pub fn admit_external(&self, size: usize) -> bool {
        let limit = self.limit_now();
        limit == 0 || self.used.get().saturating_add(self.external.get()).saturating_add(size) <= limit
    }

    /// Charge (or release) bytes kept outside the heap on the runtime's behalf.
    pub fn charge_external(&self, grow: usize, shrink: usize) {
        self.external.set(self.external.get().saturating_add(grow).saturating_sub(shrink));
        if let Some(pool) = self.pool.borrow().as_ref() {
            pool.add(grow, shrink);
        }
    }
}

pub struct Shared {
    pub rt: Cell<*mut qjs::JSRuntime>,
    pub ctx: Cell<*mut qjs::JSContext>,
    pub closed: Cell<bool>,
    /// How many entries into JS are active (nested entries come from Python callbacks).
    pub depth: Cell<u32>,
    /// Wall-clock deadline read by the interrupt handler; `None` means no limit.
    pub deadline: Cell<Option<Instant>>,
    /// Set by the interrupt handler when it stops JS; cleared when the outermost entry reports it.
    pub interrupted: Cell<bool>,
    /// Whether a refused allocation stops JS uncatchably (at the next interrupt check, and at
    /// the latest when the outermost entry returns) instead of leaving JS a catchable
    /// `InternalError: out of memory`.
    pub stop_on_oom: Cell<bool>,
    /// An allocation was refused since the current (or the last) outermost entry began.
    pub oom_hit: Cell<bool>,
    /// Values Python holds handles to (owned references), indexed by slot.
    slots: RefCell<Vec<qjs::JSValue>>,
    free_slots: RefCell<Vec<usize>>,
    /// Slots whose handle was dropped; freed at the next outermost entry (never inside a GC).
    garbage: RefCell<Vec<usize>>,
    pub helpers: RefCell<Vec<qjs::JSValue>>,
    pub object_proto: Cell<qjs::JSValue>,
    /// A Python exception raised by a callback, and the JS error thrown in its place: if that
    /// very error comes back out of JS, the original Python exception is raised again.
    pub py_error: RefCell<Option<(PyErr, qjs::JSValue)>>,
    pub heap: Heap,
    /// The stack limit given to QuickJS (0 = none), and how many error conversions currently
    /// run with `ERROR_STACK_RESERVE` added to it.
    pub max_stack: Cell<usize>,
    stack_reserve_users: Cell<u32>,
    /// Set while an exception is being converted to Python: a failure inside that conversion
    /// must not start another one (that recursion overflowed the C stack).
    pub converting_error: Cell<bool>,
    /// The class of ordinary objects (`{}`), of Python callables, and the atom "constructor".
    pub object_class: Cell<qjs::JSClassID>,
    pub py_class: Cell<qjs::JSClassID>,
    pub constructor_atom: Cell<qjs::JSAtom>,
    /// Python callables whose JS functions were finalized. They are released once JS is no
    /// longer running: releasing one may run Python code (`__del__`) that calls back into JS,
    /// which QuickJS does not allow from inside a finalizer.
    pub dead_callables: RefCell<Vec<Py<PyAny>>>,
    /// The most one value leaving JS may cost (see `convert::ELEMENT_COST`; 0 = no limit), what
    /// is left of it for the conversion under way, how many conversions are nested (a getter run
    /// by a conversion may call Python, whose arguments share the outer budget), and a counter
    /// for polling the deadline while converting.
    pub value_limit: Cell<usize>,
    pub value_left: Cell<usize>,
    pub converting: Cell<u32>,
    pub value_ticks: Cell<u32>,
    /// The message of the error past `value_limit` (None: a plain one).
    pub value_error: RefCell<Option<String>>,
}

pub const UNDEFINED: qjs::JSValue = qjs::JSValue {
    u: qjs::JSValueUnion { int32: 0 },
    tag: qjs::JS_TAG_UNDEFINED as i64,
};
pub const NULL: qjs::JSValue = qjs::JSValue {
    u: qjs::JSValueUnion { int32: 0 },
    tag: qjs::JS_TAG_NULL as i64,
};

impl Shared {
    pub fn new() -> Self {
        Shared {
            rt: Cell::new(std::ptr::null_mut()),
            ctx: Cell::new(std::ptr::null_mut()),
            closed: Cell::new(false),
            depth: Cell::new(0),
            deadline: Cell::new(None),
            interrupted: Cell::new(false),
            stop_on_oom: Cell::new(false),
            oom_hit: Cell::new(false),
            slots: RefCell::new(Vec::new()),
            free_slots: RefCell::new(Vec::new()),
            garbage: RefCell::new(Vec::new()),
            helpers: RefCell::new(Vec::new()),
            object_proto: Cell::new(UNDEFINED),
            py_error: RefCell::new(None),
            heap: Heap {
                used: Cell::new(0),
                limit: Cell::new(0),
                grace: Cell::new(0),
                refused: Cell::new(false),
                saved_gc_threshold: Cell::new(None),
                external: Cell::new(0),
                pool: RefCell::new(None),
            },
            value_limit: Cell::new(0),
            value_left: Cell::new(usize::MAX),
            converting: Cell::new(0),
            value_ticks: Cell::new(0),
            value_error: RefCell::new(None),
            max_stack: Cell::new(0),
            stack_reserve_users: Cell::new(0),
            converting_error: Cell::new(false),
            object_class: Cell::new(0),
            py_class: Cell::new(0),
            constructor_atom: Cell::new(0),
            dead_callables: RefCell::new(Vec::new()),
        }
    }

    /// An allocation was just refused. QuickJS is about to throw its out-of-memory error, and
    /// allocating that error may start a GC — which crashes when the refusal happened halfway
    /// through an update (`resize_properties` unlinks a shape from the GC list around its
    /// realloc). So automatic GC is held off until the outermost entry into JS ends.
    pub fn refused(&self) {
        let rt = self.rt.get();
        if rt.is_null() || self.heap.saved_gc_threshold.get().is_some() {
            return;
        }
        // SAFETY: live (rt is not null: called by the allocator while the runtime runs).
        unsafe {
            self.heap.saved_gc_threshold.set(Some(qjs::JS_GetGCThreshold(rt)));
            qjs::JS_SetGCThreshold(rt, qjs::size_t::MAX);
        }
    }

    /// Whether the outermost entry must report a stop for a refused allocation
    /// (`stop_on_oom`): inner entries leave it to the outermost one.
    pub fn oom_stop_due(&self) -> bool {
        self.stop_on_oom.get() && self.oom_hit.get() && self.depth.get() <= 1
    }

    /// End the out-of-memory grace (at the edges of an outermost entry into JS).
    fn end_grace(&self) {
        self.heap.grace.set(0);
        self.heap.refused.set(false);
        if let Some(t) = self.heap.saved_gc_threshold.take() {
            let rt = self.rt.get();
            if !rt.is_null() {
                // SAFETY: live (rt is not null).
                unsafe { qjs::JS_SetGCThreshold(rt, t) };
            }
        }
    }

    /// Run `f` with `ERROR_STACK_RESERVE` more C stack allowed to JS (error conversions only).
    pub fn with_stack_reserve<T>(&self, f: impl FnOnce() -> T) -> T {
        let max = self.max_stack.get();
        let rt = self.rt.get();
        if max == 0 || rt.is_null() {
            return f();
        }
        let users = self.stack_reserve_users.get();
        if users == 0 {
            // SAFETY: live (rt is not null).
            unsafe { qjs::JS_SetMaxStackSize(rt, (max + ERROR_STACK_RESERVE) as _) };
        }
        self.stack_reserve_users.set(users + 1);
        let out = f();
        self.stack_reserve_users.set(users);
        if users == 0 {
            // SAFETY: live (rt is not null).
            unsafe { qjs::JS_SetMaxStackSize(rt, max as _) };
        }
        out
    }

    /// Whether promise jobs are waiting to run (false once closed).
    pub fn has_pending_jobs(&self) -> bool {
        // SAFETY: live (not closed: checked first).
        !self.closed.get() && unsafe { qjs::JS_IsJobPending(self.rt.get()) }
    }

    pub fn check_open(&self) -> PyResult<()> {
        if self.closed.get() {
            Err(PyRuntimeError::new_err("the JS runtime is closed"))
        } else {
            Ok(())
        }
    }

    /// Store an owned value; returns its slot.
    pub fn store(&self, v: qjs::JSValue) -> usize {
        let mut slots = self.slots.borrow_mut();
        if let Some(i) = self.free_slots.borrow_mut().pop() {
            slots[i] = v;
            i
        } else {
            slots.push(v);
            slots.len() - 1
        }
    }

    /// The value in a slot (borrowed: the slot keeps its reference).
    pub fn get(&self, slot: usize) -> qjs::JSValue {
        self.slots.borrow()[slot]
    }

    /// Called when a handle is dropped. Freeing waits for the next entry.
    pub fn release(&self, slot: usize) {
        if !self.closed.get() {
            if let Ok(mut g) = self.garbage.try_borrow_mut() {
                g.push(slot);
            }
        }
    }

    fn collect_garbage(&self) {
        let slots: Vec<usize> = std::mem::take(&mut *self.garbage.borrow_mut());
        for slot in slots {
            let v = std::mem::replace(&mut self.slots.borrow_mut()[slot], UNDEFINED);
            // SAFETY: live (only `Entry::new` calls this, after `check_open`); the slot owned `v`,
            // now taken out.
            unsafe { qjs::JS_FreeValueRT(self.rt.get(), v) };
            self.free_slots.borrow_mut().push(slot);
        }
    }

    /// Free every value Python still holds, the helpers and a pending Python error: the runtime
    /// can then be freed without leaking (which QuickJS would abort on).
    pub fn free_all(&self) {
        let rt = self.rt.get();
        self.garbage.borrow_mut().clear();
        for v in self.slots.borrow_mut().drain(..) {
            // SAFETY: live (`shutdown` calls this before freeing the runtime); each slot owned its
            // value.
            unsafe { qjs::JS_FreeValueRT(rt, v) };
        }
        self.free_slots.borrow_mut().clear();
        for v in self.helpers.borrow_mut().drain(..) {
            // SAFETY: live, as above; the helpers are owned.
            unsafe { qjs::JS_FreeValueRT(rt, v) };
        }
        // SAFETY: live, as above; `object_proto` is owned (`init_helpers`), `UNDEFINED` left in its
        // place.
        unsafe { qjs::JS_FreeValueRT(rt, self.object_proto.replace(UNDEFINED)) };
        // SAFETY: live, as above; the atom is owned (`init_helpers`), 0 (no atom) left in its
        // place.
        unsafe { qjs::JS_FreeAtomRT(rt, self.constructor_atom.replace(0)) };
        if let Some((_, v)) = self.py_error.borrow_mut().take() {
            // SAFETY: live, as above; the remembered error value is owned.
            unsafe { qjs::JS_FreeValueRT(rt, v) };
        }
    }

    pub fn helper(&self, h: Helper) -> qjs::JSValue {
        self.helpers.borrow()[h as usize]
    }

    /// Release the Python callables of finalized JS functions (outside JS only).
    pub fn release_dead_callables(&self) {
        loop {
            let dead = match self.dead_callables.try_borrow_mut() {
                Ok(mut d) if !d.is_empty() => std::mem::take(&mut *d),
                _ => return,
            };
            drop(dead); // may run Python code, which may finalize more
        }
    }

    /// Drop a remembered Python error (its JS twin is freed).
    pub fn forget_py_error(&self) {
        if let Some((_, v)) = self.py_error.borrow_mut().take() {
            // SAFETY: live (a remembered error exists only while the runtime does: `free_all` takes
            // it); owned.
            unsafe { qjs::JS_FreeValueRT(self.rt.get(), v) };
        }
    }
}

/// An active entry into JS. The outermost entry frees dropped handles first, clears what an
/// earlier entry may have left behind (an interruption, the out-of-memory grace) and records the
/// C stack top, so QuickJS measures recursion from the caller's frame.
pub struct Entry<'a> {
    pub shared: &'a Shared,
}

impl<'a> Entry<'a> {
    pub fn new(shared: &'a Shared) -> PyResult<Self> {
        shared.check_open()?;
        if shared.depth.get() == 0 {
            shared.interrupted.set(false);
            shared.oom_hit.set(false);
            shared.end_grace();
            shared.collect_garbage();
            shared.forget_py_error();
            // SAFETY: live (`check_open` above).
            unsafe { qjs::JS_UpdateStackTop(shared.rt.get()) };
        }
        shared.depth.set(shared.depth.get() + 1);
        Ok(Entry { shared })
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let depth = self.shared.depth.get() - 1;
        self.shared.depth.set(depth);
        if depth == 0 {
            self.shared.end_grace();
            self.shared.release_dead_callables();
        }
    }
}
