//! State shared by a runtime and every handle into it.
//!
//! The pieces Python can reach without holding the runtime (deadline, handle slots, the
//! "closed" flag) live here, behind an `Rc`, so that arming a deadline or dropping a handle never
//! needs the runtime, and a handle that outlives `close()` fails cleanly instead of touching freed
//! memory. Everything is single-threaded: the pyclasses are `unsendable`.

use std::cell::{Cell, RefCell};
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
    BigFromText = 9,
    BigToHex = 10,
    SafeString = 11,
    MakeError = 12,
    PromiseThen = 13,
}
pub const HELPER_COUNT: usize = 14;

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
            slots: RefCell::new(Vec::new()),
            free_slots: RefCell::new(Vec::new()),
            garbage: RefCell::new(Vec::new()),
            helpers: RefCell::new(Vec::new()),
            object_proto: Cell::new(UNDEFINED),
            py_error: RefCell::new(None),
        }
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
            unsafe { qjs::JS_FreeValueRT(rt, v) };
        }
        self.free_slots.borrow_mut().clear();
        for v in self.helpers.borrow_mut().drain(..) {
            unsafe { qjs::JS_FreeValueRT(rt, v) };
        }
        unsafe { qjs::JS_FreeValueRT(rt, self.object_proto.replace(UNDEFINED)) };
        if let Some((_, v)) = self.py_error.borrow_mut().take() {
            unsafe { qjs::JS_FreeValueRT(rt, v) };
        }
    }

    pub fn helper(&self, h: Helper) -> qjs::JSValue {
        self.helpers.borrow()[h as usize]
    }

    /// Drop a remembered Python error (its JS twin is freed).
    pub fn forget_py_error(&self) {
        if let Some((_, v)) = self.py_error.borrow_mut().take() {
            unsafe { qjs::JS_FreeValueRT(self.rt.get(), v) };
        }
    }
}

/// An active entry into JS. The outermost entry frees dropped handles first and records the
/// C stack top, so QuickJS measures recursion from the caller's frame.
pub struct Entry<'a> {
    pub shared: &'a Shared,
}

impl<'a> Entry<'a> {
    pub fn new(shared: &'a Shared) -> PyResult<Self> {
        shared.check_open()?;
        if shared.depth.get() == 0 {
            shared.collect_garbage();
            shared.forget_py_error();
            unsafe { qjs::JS_UpdateStackTop(shared.rt.get()) };
        }
        shared.depth.set(shared.depth.get() + 1);
        Ok(Entry { shared })
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.shared.depth.set(self.shared.depth.get() - 1);
    }
}
