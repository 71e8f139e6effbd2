//! Values across the boundary, both ways, without guessing.
//!
//! JS Number ⇄ `float` (never `int`), BigInt ⇄ `int` (any size), string ⇄ `str` (NUL-safe; lone
//! surrogates travel as Python surrogates), ArrayBuffer ⇄ `bytes`, typed arrays / DataView ⇄
//! `TypedArray`, Map/Set ⇄ `JSMap`/`JSSet`, wrapper objects ⇄ `Boxed`, Array ⇄ `list`, plain
//! objects → `dict` of their `for…in` keys (and `dict` → object), `null` ⇄ `None`, `undefined` ⇄
//! `UNDEFINED`; functions, promises and other objects become handles.

use std::rc::Rc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple};
use rquickjs::qjs;

use crate::errors::{take_exception, value_too_large, JSTerminated};
use crate::handles::{new_handle, JSObject};
use crate::shared::{Helper, Shared, NULL, UNDEFINED};

/// Deeper values are refused: a cycle (`a.self = a`) would otherwise recurse forever.
pub const MAX_DEPTH: usize = 512;

/// Longer arrays are refused rather than turned into lists.
pub const MAX_ARRAY_LENGTH: i64 = 1 << 26;

/// What each value (an array item, an object property, a map or set entry, …) costs in a
/// runtime's value limit besides the bytes of its strings and buffers: about what it costs to
/// carry it on to a reply (its Python objects on the way and the time to make them), so that
/// the limit bounds both the memory and the time of a conversion.
pub const ELEMENT_COST: usize = 256;

/// While converting, the deadline is polled every this many values.
const DEADLINE_POLL: u32 = 1024;

/// The value limit's account for one conversion from JS (see `Runtime.set_value_limit`). The
/// outermost conversion starts it; conversions nested in it (a getter that calls Python) draw
/// on the same budget.
struct Budget<'a>(&'a Shared);

impl<'a> Budget<'a> {
    fn start(shared: &'a Shared) -> Self {
        let outer = shared.converting.get();
        if outer == 0 {
            let limit = shared.value_limit.get();
            shared.value_left.set(if limit == 0 { usize::MAX } else { limit });
        }
        shared.converting.set(outer + 1);
        Budget(shared)
    }
}

impl Drop for Budget<'_> {
    fn drop(&mut self) {
        self.0.converting.set(self.0.converting.get() - 1);
    }
}

/// Take `bytes` from the conversion's budget; now and then, check the deadline too.
#[inline]
fn charge(py: Python<'_>, shared: &Shared, bytes: usize) -> PyResult<()> {
    let left = shared.value_left.get();
    if bytes > left {
        return Err(value_too_large(py, shared));
    }
    shared.value_left.set(left - bytes);
    poll_deadline(shared)
}

/// Every `DEADLINE_POLL` calls, stop the conversion under way if the deadline has passed.
#[inline]
fn poll_deadline(shared: &Shared) -> PyResult<()> {
    let ticks = shared.value_ticks.get().wrapping_add(1);
    shared.value_ticks.set(ticks);
    if ticks.is_multiple_of(DEADLINE_POLL) {
        if let Some(d) = shared.deadline.get() {
            if std::time::Instant::now() >= d {
                shared.interrupted.set(true);
                return Err(JSTerminated::new_err("JS execution was stopped at its deadline"));
            }
        }
    }
    Ok(())
}

/// Convert a borrowed JS value to Python, as one value for the value limit.
pub fn value_to_py(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue) -> PyResult<Py<PyAny>> {
    let _budget = Budget::start(shared);
    to_py(py, shared, v, 0)
}

/// Convert borrowed JS values (a call's arguments) to Python, together one value for the limit.
pub fn values_to_py(py: Python<'_>, shared: &Rc<Shared>, vs: &[qjs::JSValue]) -> PyResult<Vec<Py<PyAny>>> {
    let _budget = Budget::start(shared);
    let mut out = Vec::with_capacity(vs.len());
    for v in vs {
        out.push(to_py(py, shared, *v, 0)?);
    }
    Ok(out)
}

/// The Python classes of JS values that have no Python twin (`jshost/engine/values.py`).
struct PyTypes {
    undefined: Py<PyAny>,
    typed_array: Py<PyAny>,
    js_map: Py<PyAny>,
    js_set: Py<PyAny>,
    boxed: Py<PyAny>,
}

/// Set once by `init_types`: the extension imports nothing from the `jshost` package; the
/// package hands it these classes when `jshost.engine.values` is imported.
static TYPES: PyOnceLock<PyTypes> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&'static PyTypes> {
    TYPES.get(py).ok_or_else(|| {
        PyRuntimeError::new_err("jshost._engine has no value types yet: import jshost.engine first")
    })
}

/// `_init_types(...)`: hand the extension the value classes (`jshost.engine.values` does, once,
/// when imported). A second call with other classes is refused: values already converted
/// would stop matching.
#[pyfunction]
#[pyo3(name = "_init_types", signature = (*, undefined, typed_array, js_map, js_set, boxed))]
pub fn init_types(
    py: Python<'_>,
    undefined: Py<PyAny>,
    typed_array: Py<PyAny>,
    js_map: Py<PyAny>,
    js_set: Py<PyAny>,
    boxed: Py<PyAny>,
) -> PyResult<()> {
    let given = [&undefined, &typed_array, &js_map, &js_set, &boxed].map(|o| o.as_ptr());
    let set = TYPES.get_or_init(py, || PyTypes { undefined, typed_array, js_map, js_set, boxed });
    let held = [&set.undefined, &set.typed_array, &set.js_map, &set.js_set, &set.boxed].map(|o| o.as_ptr());
    if given != held {
        return Err(PyRuntimeError::new_err("jshost._engine's value types are already set"));
    }
    Ok(())
}

pub fn undefined(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(types(py)?.undefined.clone_ref(py))
}

fn too_deep() -> PyErr {
    PyValueError::new_err(format!("value nested deeper than {MAX_DEPTH} levels"))
}

/// Call a conversion helper; its result is owned by the caller.
pub fn call_helper(
    py: Python<'_>,
    shared: &Rc<Shared>,
    h: Helper,
    args: &mut [qjs::JSValue],
) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    let f = shared.helper(h);
    // SAFETY: live (conversions run inside an entry); the helper `f` is owned by `Shared`, `args`
    // are the caller's and stay alive through the call; the result is owned.
    let r = unsafe { qjs::JS_Call(ctx, f, UNDEFINED, args.len() as i32, args.as_mut_ptr()) };
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(r) } {
        return Err(take_exception(py, shared));
    }
    Ok(r)
}

/// A JS string (borrowed) as a Python `str`. On failure (out of memory) the JS exception is
/// dropped: error paths use this; conversions use `string_to_py`, which reports it.
pub fn js_string_to_py(py: Python<'_>, ctx: *mut qjs::JSContext, v: qjs::JSValue) -> PyResult<Py<PyAny>> {
    let mut len: usize = 0;
    // SAFETY: live (callers are inside an entry); `v` is borrowed; `len` is a valid place for
    // QuickJS to write the length to.
    let p = unsafe { qjs::JS_ToCStringLen2(ctx, &mut len as *mut usize as *mut _, v, false) };
    if p.is_null() {
        // SAFETY: live; the pending exception is taken, owned.
        let e = unsafe { qjs::JS_GetException(ctx) };
        // SAFETY: live; `e` is owned and dropped on purpose.
        unsafe { qjs::JS_FreeValue(ctx, e) };
        return Err(PyValueError::new_err("could not read a JS string (out of memory?)"));
    }
    // SAFETY: `p` is QuickJS's buffer of `len` bytes, alive until `JS_FreeCString` below.
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
    let out = utf8_to_py(py, bytes);
    // SAFETY: live; `p` came from `JS_ToCStringLen2` and is no longer used.
    unsafe { qjs::JS_FreeCString(ctx, p) };
    out
}

/// A JS string (borrowed) as a Python `str`, its bytes charged to the value limit; failing to
/// read it (out of memory) is a JSError.
fn string_to_py(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue) -> PyResult<Py<PyAny>> {
    let ctx = shared.ctx.get();
    let mut len: usize = 0;
    // SAFETY: live (inside an entry); `v` is borrowed; `len` is a valid place for the length.
    let p = unsafe { qjs::JS_ToCStringLen2(ctx, &mut len as *mut usize as *mut _, v, false) };
    if p.is_null() {
        return Err(take_exception(py, shared));
    }
    if let Err(e) = charge(py, shared, len) {
        // SAFETY: live; `p` came from `JS_ToCStringLen2` and is no longer used.
        unsafe { qjs::JS_FreeCString(ctx, p) };
        return Err(e);
    }
    // SAFETY: `p` is QuickJS's buffer of `len` bytes, alive until `JS_FreeCString` below.
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
    let out = utf8_to_py(py, bytes);
    // SAFETY: live; `p` came from `JS_ToCStringLen2` and is no longer used.
    unsafe { qjs::JS_FreeCString(ctx, p) };
    out
}

fn flat_pairs_to_dict(py: Python<'_>, shared: &Rc<Shared>, arr: qjs::JSValue, depth: usize) -> PyResult<Py<PyAny>> {
    let items = array_to_vec(py, shared, arr, depth)?;
    let d = PyDict::new(py);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        d.set_item(k, v)?;
    }
    Ok(d.into_any().unbind())
}

fn array_to_vec(py: Python<'_>, shared: &Rc<Shared>, arr: qjs::JSValue, depth: usize) -> PyResult<Vec<Py<PyAny>>> {
    let ctx = shared.ctx.get();
    let mut len: i64 = 0;
    // SAFETY: live (inside an entry); `arr` is borrowed; `len` is a valid place for the length.
    if unsafe { qjs::JS_GetLength(ctx, arr, &mut len) } < 0 {
        return Err(take_exception(py, shared));
    }
    if len > MAX_ARRAY_LENGTH {
        // A sparse array costs JS nothing (`a.length = 2**32 - 1`), its list would not fit.
        return Err(PyValueError::new_err(format!(
            "JS array too long to convert (length {len}, at most {MAX_ARRAY_LENGTH})"
        )));
    }
    // Fail before converting anything when the items alone cannot fit (`new Array(4e7)`).
    if (len.max(0) as usize).saturating_mul(ELEMENT_COST) > shared.value_left.get() {
        return Err(value_too_large(py, shared));
    }
    let mut out = Vec::with_capacity(len.clamp(0, 1024) as usize);
    for i in 0..len {
        // SAFETY: live; `arr` is borrowed; the item is a new reference, owned (freed below).
        let item = unsafe { qjs::JS_GetPropertyUint32(ctx, arr, i as u32) };
        // SAFETY: reads the tag only.
        if unsafe { qjs::JS_IsException(item) } {
            return Err(take_exception(py, shared));
        }
        let r = to_py(py, shared, item, depth + 1);
        // SAFETY: live; `item` is owned and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, item) };
        out.push(r?);
    }
    Ok(out)
}

/// Convert a borrowed JS value to Python, inside a conversion (`value_to_py` starts one).
fn to_py(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue, depth: usize) -> PyResult<Py<PyAny>> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    charge(py, shared, ELEMENT_COST)?;
    let ctx = shared.ctx.get();
    // SAFETY: reads the tag only.
    let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(v) };
    match tag {
        // SAFETY: the payload getter of the tag just read.
        qjs::JS_TAG_INT => Ok(PyFloat::new(py, unsafe { qjs::JS_VALUE_GET_INT(v) } as f64).into_any().unbind()),
        // SAFETY: the payload getter of the tag just read.
        qjs::JS_TAG_FLOAT64 => Ok(PyFloat::new(py, unsafe { qjs::JS_VALUE_GET_FLOAT64(v) }).into_any().unbind()),
        // SAFETY: the payload getter of the tag just read.
        qjs::JS_TAG_BOOL => Ok(PyBool::new(py, unsafe { qjs::JS_VALUE_GET_BOOL(v) }).to_owned().into_any().unbind()),
        qjs::JS_TAG_NULL => Ok(py.None()),
        qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_UNINITIALIZED => undefined(py),
        qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => string_to_py(py, shared, v),
        qjs::JS_TAG_SHORT_BIG_INT => {
            let mut n: i64 = 0;
            // SAFETY: live (inside an entry); `v` is a short BigInt (borrowed), which converts
            // without failing.
            unsafe { qjs::JS_ToBigInt64(ctx, &mut n, v) };
            Ok(n.into_pyobject(py)?.into_any().unbind())
        }
        qjs::JS_TAG_BIG_INT => {
            let hex = call_helper(py, shared, Helper::BigToHex, &mut [v])?;
            let s = string_to_py(py, shared, hex);
            // SAFETY: live; `hex` is owned (the helper's result) and no longer used.
            unsafe { qjs::JS_FreeValue(ctx, hex) };
            let int_type = py.get_type::<PyInt>();
            Ok(int_type.call1((s?, 16))?.unbind())
        }
        qjs::JS_TAG_SYMBOL => new_handle(py, shared, dup(ctx, v)),
        qjs::JS_TAG_OBJECT => object_to_py(py, shared, v, depth),
        _ => Err(PyTypeError::new_err(format!("unsupported JS value tag {tag}"))),
    }
}

/// Indexed by `JSTypedArrayEnum`.
const TYPED_ARRAY_KINDS: [&str; 12] = [
    "Uint8ClampedArray", "Int8Array", "Uint8Array", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "BigInt64Array", "BigUint64Array", "Float16Array", "Float32Array", "Float64Array",
];

/// A copy of `length` bytes (default: all) at `offset` in an ArrayBuffer (borrowed). A detached
/// buffer or a view out of its bounds has no bytes.
fn view_bytes(py: Python<'_>, shared: &Shared, buf: qjs::JSValue, offset: usize, length: Option<usize>) -> PyResult<Py<PyAny>> {
    let ctx = shared.ctx.get();
    let mut size: qjs::size_t = 0;
    // SAFETY: reads the tag only.
    let p = if unsafe { qjs::JS_IsException(buf) } {
        std::ptr::null_mut()
    } else {
        // SAFETY: live (inside an entry); `buf` is borrowed and not an exception; `size` is a valid
        // place.
        unsafe { qjs::JS_GetArrayBuffer(ctx, &mut size, buf) }
    };
    if p.is_null() {
        // JS_GetTypedArrayBuffer / JS_GetArrayBuffer threw (detached or out of bounds).
        // SAFETY: live; the pending exception is taken, owned.
        let e = unsafe { qjs::JS_GetException(ctx) };
        // SAFETY: live; `e` is owned and dropped on purpose.
        unsafe { qjs::JS_FreeValue(ctx, e) };
        return Ok(PyBytes::new(py, &[]).into_any().unbind());
    }
    let size = size as usize;
    let length = length.unwrap_or(size);
    let data: &[u8] = match offset.checked_add(length) {
        // SAFETY: `p` points to the buffer's `size` bytes and `offset + length <= size`; the buffer
        // is borrowed and no JS runs before the copy below, so it can be neither detached nor
        // resized.
        Some(end) if end <= size => unsafe { std::slice::from_raw_parts(p.add(offset), length) },
        _ => &[],
    };
    charge(py, shared, data.len())?;
    Ok(PyBytes::new(py, data).into_any().unbind())
}

pub fn dup(ctx: *mut qjs::JSContext, v: qjs::JSValue) -> qjs::JSValue {
    // SAFETY: live: every caller is inside an entry and holds `v` (borrowed); the copy is the
    // caller's.
    unsafe { qjs::JS_DupValue(ctx, v) }
}

fn object_to_py(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue, depth: usize) -> PyResult<Py<PyAny>> {
    let ctx = shared.ctx.get();
    let t = types(py)?;
    // SAFETY: live (inside an entry); `v` is borrowed, and every new value made here is owned and
    // freed here (or handed to a handle); QuickJS's calls that take out-parameters are given valid
    // places.
    unsafe {
        if qjs::JS_IsArray(v) {
            return Ok(PyList::new(py, array_to_vec(py, shared, v, depth)?)?.into_any().unbind());
        }
        if qjs::JS_IsFunction(ctx, v) || qjs::JS_IsPromise(v) {
            return new_handle(py, shared, dup(ctx, v));
        }
        if qjs::JS_IsArrayBuffer(v) {
            return view_bytes(py, shared, v, 0, None);
        }
        let ta = qjs::JS_GetTypedArrayType(v);
        if ta >= 0 {
            let kind = TYPED_ARRAY_KINDS.get(ta as usize).copied().unwrap_or("Uint8Array");
            let (mut offset, mut length): (qjs::size_t, qjs::size_t) = (0, 0);
            let buf = qjs::JS_GetTypedArrayBuffer(ctx, v, &mut offset, &mut length, std::ptr::null_mut());
            let data = view_bytes(py, shared, buf, offset as usize, Some(length as usize));
            qjs::JS_FreeValue(ctx, buf);
            return t.typed_array.call1(py, (kind, data?));
        }
        if qjs::JS_IsDataView(v) {
            let info = call_helper(py, shared, Helper::ViewInfo, &mut [v])?;
            let parts = [0, 1, 2].map(|i| qjs::JS_GetPropertyUint32(ctx, info, i));
            qjs::JS_FreeValue(ctx, info);
            let (mut offset, mut length) = (0.0f64, 0.0f64);
            qjs::JS_ToFloat64(ctx, &mut offset, parts[1]);
            qjs::JS_ToFloat64(ctx, &mut length, parts[2]);
            let data = view_bytes(py, shared, parts[0], offset as usize, Some(length as usize));
            for p in parts {
                qjs::JS_FreeValue(ctx, p);
            }
            return t.typed_array.call1(py, ("DataView", data?));
        }
        if qjs::JS_IsMap(v) || qjs::JS_IsSet(v) {
            let is_map = qjs::JS_IsMap(v);
            let h = if is_map { Helper::MapItems } else { Helper::SetItems };
            let items = call_helper(py, shared, h, &mut [v])?;
            let list = array_to_vec(py, shared, items, depth);
            qjs::JS_FreeValue(ctx, items);
            let list = list?;
            if is_map {
                let mut pairs: Vec<Bound<'_, PyTuple>> = Vec::with_capacity(list.len());
                for p in list {
                    pairs.push(p.bind(py).cast::<PyList>()?.to_tuple());
                }
                return t.js_map.call1(py, (PyList::new(py, pairs)?,));
            }
            return t.js_set.call1(py, (PyList::new(py, list)?,));
        }
        if qjs::JS_IsError(v) {
            return new_handle(py, shared, dup(ctx, v));
        }
        let plain = is_plain(py, shared, v)?;
        if plain != Plain::No {
            if plain == Plain::Direct {
                if let Some(d) = own_data_to_dict(py, shared, v, depth)? {
                    return Ok(d);
                }
            }
            let pairs = call_helper(py, shared, Helper::ForIn, &mut [v])?;
            let d = flat_pairs_to_dict(py, shared, pairs, depth);
            qjs::JS_FreeValue(ctx, pairs);
            return d;
        }
        let unboxed = call_helper(py, shared, Helper::Unbox, &mut [v])?;
        if !qjs::JS_IsNull(unboxed) {
            let kind = qjs::JS_GetPropertyUint32(ctx, unboxed, 0);
            let prim = qjs::JS_GetPropertyUint32(ctx, unboxed, 1);
            let props = qjs::JS_GetPropertyUint32(ctx, unboxed, 2);
            let r = (|| -> PyResult<Py<PyAny>> {
                let kind = to_py(py, shared, kind, depth + 1)?;
                let prim = to_py(py, shared, prim, depth + 1)?;
                let props = flat_pairs_to_dict(py, shared, props, depth)?;
                t.boxed.call1(py, (kind, prim, props))
            })();
            for x in [kind, prim, props, unboxed] {
                qjs::JS_FreeValue(ctx, x);
            }
            return r;
        }
        new_handle(py, shared, dup(ctx, v))
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Plain {
    No,
    /// Its prototype is `Object.prototype` or `null`.
    Direct,
    /// Other plain objects come between.
    Inherits,
}

/// Whether `v` is a plain object: an ordinary object (not an array, function, Date, Error,
/// wrapper, Proxy, …) whose prototypes up to `Object.prototype` (or `null`) are ordinary objects
/// that are no constructor's `prototype` (they have no own `constructor`). So `{}`,
/// `Object.create(null)` and `Object.create({inherited: 1})` are plain; an instance of a class
/// or of a constructor function is not. Runs no JS (a Proxy is not ordinary, so no trap runs).
fn is_plain(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue) -> PyResult<Plain> {
    let ctx = shared.ctx.get();
    let object_class = shared.object_class.get();
    // SAFETY: `object_proto` is an object (`init_helpers`), read for its address only.
    let object_proto = unsafe { qjs::JS_VALUE_GET_PTR(shared.object_proto.get()) };
    // SAFETY: `v` is a valid object (borrowed: its caller checked the tag); reads its class only.
    if unsafe { qjs::JS_GetClassID(v) } != object_class {
        return Ok(Plain::No);
    }
    // SAFETY: live (inside an entry); `v` is an ordinary object, so no JS runs; the prototype is
    // owned.
    let mut p = unsafe { qjs::JS_GetPrototype(ctx, v) };
    let mut found = Plain::Direct;
    loop {
        // SAFETY: live; `p` is owned, freed on every way out of the loop or replaced by `next`; it
        // is an ordinary object when its prototype or own property is read, so no JS (no Proxy
        // trap) runs.
        unsafe {
            if qjs::JS_IsException(p) {
                return Err(take_exception(py, shared));
            }
            if qjs::JS_IsNull(p) {
                return Ok(found);
            }
            if qjs::JS_VALUE_GET_PTR(p) == object_proto {
                qjs::JS_FreeValue(ctx, p);
                return Ok(found);
            }
            found = Plain::Inherits;
            let own_constructor = if qjs::JS_GetClassID(p) == object_class {
                qjs::JS_GetOwnProperty(ctx, std::ptr::null_mut(), p, shared.constructor_atom.get())
            } else {
                1
            };
            if own_constructor != 0 {
                qjs::JS_FreeValue(ctx, p);
                if own_constructor < 0 {
                    return Err(take_exception(py, shared));
                }
                return Ok(Plain::No);
            }
            let next = qjs::JS_GetPrototype(ctx, p);
            qjs::JS_FreeValue(ctx, p);
            p = next;
        }
    }
}

/// The own enumerable string keys of `v`, in order (integer-like keys first), or None.
fn own_enumerable(shared: &Shared, v: qjs::JSValue) -> Option<(*mut qjs::JSPropertyEnum, u32)> {
    let ctx = shared.ctx.get();
    let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
    let mut tab: *mut qjs::JSPropertyEnum = std::ptr::null_mut();
    let mut len: u32 = 0;
    // SAFETY: live (inside an entry); `v` is borrowed; `tab` and `len` are valid places; on success
    // the caller owns `tab` (freed by `JS_FreePropertyEnum`).
    if unsafe { qjs::JS_GetOwnPropertyNames(ctx, &mut tab, &mut len, v, flags) } < 0 {
        // SAFETY: live; the pending exception is taken, owned.
        let e = unsafe { qjs::JS_GetException(ctx) };
        // SAFETY: live; `e` is owned and dropped on purpose.
        unsafe { qjs::JS_FreeValue(ctx, e) };
        return None;
    }
    Some((tab, len))
}

/// The `for…in` dict of a plain object whose prototype is `Object.prototype` or `null`, made
/// without running JS: its own enumerable string-keyed properties, each looked up once. With an
/// accessor among them (its getter must run in `for…in` order) or an enumerable property on
/// `Object.prototype` (which `for…in` visits too), None: the caller uses the `for…in` helper.
fn own_data_to_dict(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue, depth: usize) -> PyResult<Option<Py<PyAny>>> {
    let ctx = shared.ctx.get();
    // `for…in` also visits enumerable properties inherited from Object.prototype.
    let proto = shared.object_proto.get();
    // SAFETY: live (inside an entry); `v` is a plain object (`is_plain`), so no JS runs; the
    // prototype is owned and freed below.
    let direct_proto = unsafe { qjs::JS_GetPrototype(ctx, v) };
    // SAFETY: reads the tag only.
    let inherits = !unsafe { qjs::JS_IsNull(direct_proto) };
    // SAFETY: live; `direct_proto` is owned and no longer used.
    unsafe { qjs::JS_FreeValue(ctx, direct_proto) };
    if inherits {
        match own_enumerable(shared, proto) {
            Some((tab, len)) => {
                // SAFETY: live; `tab` and `len` came from `own_enumerable` and are no longer used.
                unsafe { qjs::JS_FreePropertyEnum(ctx, tab, len) };
                if len != 0 {
                    return Ok(None);
                }
            }
            None => return Ok(None),
        }
    }
    let Some((tab, len)) = own_enumerable(shared, v) else { return Ok(None) };
    let props: &[qjs::JSPropertyEnum] =
        // SAFETY: `tab` holds `len` entries (from `JS_GetOwnPropertyNames`), alive until freed
        // below.
        if len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(tab, len as usize) } };
    // Read every value first: bail out before converting anything if one is an accessor.
    let mut values: Vec<qjs::JSValue> = Vec::with_capacity(props.len());
    let mut accessor = false;
    for prop in props {
        let mut desc = std::mem::MaybeUninit::<qjs::JSPropertyDescriptor>::uninit();
        // SAFETY: live; `desc` is a valid place; `v` is borrowed and the atom is held by `tab`.
        let rc = unsafe { qjs::JS_GetOwnProperty(ctx, desc.as_mut_ptr(), v, prop.atom) };
        if rc < 0 {
            // SAFETY: live; the pending exception is taken, owned.
            let e = unsafe { qjs::JS_GetException(ctx) };
            // SAFETY: live; `e` is owned and dropped on purpose.
            unsafe { qjs::JS_FreeValue(ctx, e) };
            accessor = true;
            break;
        }
        if rc == 0 {
            // Gone (cannot happen without running JS); let the helper decide.
            accessor = true;
            break;
        }
        // SAFETY: `JS_GetOwnProperty` returned 1, so it filled `desc` in.
        let desc = unsafe { desc.assume_init() };
        if desc.flags & qjs::JS_PROP_GETSET as i32 != 0 {
            // SAFETY: live; the descriptor's three values are ours (owned) and not kept.
            unsafe {
                qjs::JS_FreeValue(ctx, desc.getter);
                qjs::JS_FreeValue(ctx, desc.setter);
                qjs::JS_FreeValue(ctx, desc.value);
            }
            accessor = true;
            break;
        }
        // SAFETY: live; the getter and setter are owned and not kept (the value is, in `values`).
        unsafe {
            qjs::JS_FreeValue(ctx, desc.getter);
            qjs::JS_FreeValue(ctx, desc.setter);
        }
        values.push(desc.value);
    }
    let out = if accessor {
        Ok(None)
    } else {
        (|| -> PyResult<Option<Py<PyAny>>> {
            let d = PyDict::new(py);
            for (prop, val) in props.iter().zip(values.iter()) {
                let key = atom_to_py(py, ctx, prop.atom)?;
                charge(py, shared, key.bind(py).len().unwrap_or(0))?;
                let val = to_py(py, shared, *val, depth + 1)?;
                d.set_item(key, val)?;
            }
            Ok(Some(d.into_any().unbind()))
        })()
    };
    for val in values {
        // SAFETY: live; each value in `values` is owned and no longer used.
        unsafe { qjs::JS_FreeValue(ctx, val) };
    }
    // SAFETY: live; `tab` and `len` came from `own_enumerable` and are no longer used.
    unsafe { qjs::JS_FreePropertyEnum(ctx, tab, len) };
    out
}

/// A property key (atom) as a Python `str`.
fn atom_to_py(py: Python<'_>, ctx: *mut qjs::JSContext, atom: qjs::JSAtom) -> PyResult<Py<PyAny>> {
    let mut len: qjs::size_t = 0;
    // SAFETY: live (inside an entry); `atom` is borrowed from its caller; `len` is a valid place.
    let p = unsafe { qjs::JS_AtomToCStringLen(ctx, &mut len, atom) };
    if p.is_null() {
        // SAFETY: live; the pending exception is taken, owned.
        let e = unsafe { qjs::JS_GetException(ctx) };
        // SAFETY: live; `e` is owned and dropped on purpose.
        unsafe { qjs::JS_FreeValue(ctx, e) };
        return Err(PyValueError::new_err("could not read a JS property name (out of memory?)"));
    }
    // SAFETY: `p` is QuickJS's buffer of `len` bytes, alive until `JS_FreeCString` below.
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len as usize) };
    let out = utf8_to_py(py, bytes);
    // SAFETY: live; `p` came from `JS_AtomToCStringLen` and is no longer used.
    unsafe { qjs::JS_FreeCString(ctx, p) };
    out
}

/// UTF-8 from QuickJS as `str`; QuickJS writes a lone surrogate as its 3-byte (WTF-8) form,
/// which Python's surrogatepass reads back as the same lone surrogate.
fn utf8_to_py(py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(PyString::new(py, s).into_any().unbind()),
        Err(_) => PyBytes::new(py, bytes).call_method1("decode", ("utf-8", "surrogatepass")).map(|s| s.unbind()),
    }
}

/// Convert a Python value to an owned JS value.
pub fn from_py(py: Python<'_>, shared: &Rc<Shared>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<qjs::JSValue> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let ctx = shared.ctx.get();
    if obj.is_none() {
        return Ok(NULL);
    }
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return new_js_string(py, shared, s);
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(qjs::JS_NewFloat64(f.value()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(qjs::JSValue { u: qjs::JSValueUnion { int32: b.is_true() as i32 }, tag: qjs::JS_TAG_BOOL as i64 });
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(n) = obj.extract::<i64>() {
            // SAFETY: live (conversions run inside an entry); the new value is checked by `owned`.
            return owned(py, shared, unsafe { qjs::JS_NewBigInt64(ctx, n) });
        }
        // Beyond 64 bits: through hexadecimal text, which (unlike decimal) Python converts at
        // any size (`sys.get_int_max_str_digits` limits decimal only).
        let negative = obj.lt(0)?;
        let magnitude = if negative { obj.neg()? } else { obj.clone() };
        let hex = magnitude.call_method1("__format__", ("x",))?;
        let hex = new_js_string(py, shared, hex.cast::<PyString>()?)?;
        let sign = qjs::JSValue { u: qjs::JSValueUnion { int32: negative as i32 }, tag: qjs::JS_TAG_BOOL as i64 };
        return call_with_owned(py, shared, Helper::BigFromHex, vec![hex, sign]);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return new_js_string(py, shared, s);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(qjs::JS_NewFloat64(f.value()));
    }
    if let Ok(h) = obj.cast::<JSObject>() {
        let h = h.borrow();
        if !Rc::ptr_eq(&h.shared, shared) {
            return Err(PyValueError::new_err("this handle belongs to another JS runtime"));
        }
        h.shared.check_open()?;
        return Ok(dup(ctx, h.shared.get(h.slot)));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        let data = b.as_bytes();
        // SAFETY: live (inside an entry); QuickJS copies the `data.len()` bytes at `data`.
        return owned(py, shared, unsafe { qjs::JS_NewArrayBufferCopy(ctx, data.as_ptr(), data.len() as _) });
    }
    if obj.cast::<PyByteArray>().is_ok() || obj.cast::<PyMemoryView>().is_ok() {
        let data = py.get_type::<PyBytes>().call1((obj,))?;
        let data = data.cast::<PyBytes>()?.as_bytes();
        // SAFETY: live (inside an entry); QuickJS copies the `data.len()` bytes at `data`.
        return owned(py, shared, unsafe { qjs::JS_NewArrayBufferCopy(ctx, data.as_ptr(), data.len() as _) });
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        return seq_to_js(py, shared, obj.try_iter()?, depth);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_to_js(py, shared, d, depth);
    }
    let t = types(py)?;
    if obj.is(t.undefined.bind(py)) {
        return Ok(UNDEFINED);
    }
    if obj.is_instance(t.typed_array.bind(py))? {
        let kind = from_py(py, shared, &obj.getattr("kind")?, depth + 1)?;
        let data = match obj.getattr("data").and_then(|d| from_py(py, shared, &d, depth + 1)) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: live; `kind` is owned and no longer used.
                unsafe { qjs::JS_FreeValue(ctx, kind) };
                return Err(e);
            }
        };
        return call_with_owned(py, shared, Helper::MakeView, vec![kind, data]);
    }
    if obj.is_instance(t.js_map.bind(py))? {
        let items = obj.getattr("items")?;
        let pairs = PyList::empty(py);
        for item in items.try_iter()? {
            let item = item?;
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            pairs.append(PyList::new(py, [k, v])?)?;
        }
        let arr = from_py(py, shared, pairs.as_any(), depth + 1)?;
        return call_with_owned(py, shared, Helper::MakeMap, vec![arr]);
    }
    if obj.is_instance(t.js_set.bind(py))? {
        let arr = seq_to_js(py, shared, obj.getattr("items")?.try_iter()?, depth + 1)?;
        return call_with_owned(py, shared, Helper::MakeSet, vec![arr]);
    }
    if obj.is_instance(t.boxed.bind(py))? {
        let kind = from_py(py, shared, &obj.getattr("kind")?, depth + 1)?;
        let value = match obj.getattr("value").and_then(|v| from_py(py, shared, &v, depth + 1)) {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: live; `kind` is owned and no longer used.
                unsafe { qjs::JS_FreeValue(ctx, kind) };
                return Err(e);
            }
        };
        let flat = (|| -> PyResult<Bound<'_, PyList>> {
            let flat = PyList::empty(py);
            for (k, v) in obj.getattr("props")?.cast::<PyDict>()?.iter() {
                flat.append(k)?;
                flat.append(v)?;
            }
            Ok(flat)
        })();
        let props = match flat.and_then(|flat| from_py(py, shared, flat.as_any(), depth + 1)) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: live; `kind` is owned and no longer used.
                unsafe { qjs::JS_FreeValue(ctx, kind) };
                // SAFETY: live; `value` is owned and no longer used.
                unsafe { qjs::JS_FreeValue(ctx, value) };
                return Err(e);
            }
        };
        return call_with_owned(py, shared, Helper::Box, vec![kind, value, props]);
    }
    if obj.is_callable() {
        return crate::callbacks::new_py_function(py, shared, obj.clone().unbind());
    }
    Err(PyTypeError::new_err(format!(
        "cannot convert a Python {} to a JS value",
        obj.get_type().name()?
    )))
}

fn call_with_owned(py: Python<'_>, shared: &Rc<Shared>, h: Helper, mut args: Vec<qjs::JSValue>) -> PyResult<qjs::JSValue> {
    let r = call_helper(py, shared, h, &mut args);
    for a in args {
        // SAFETY: live (inside an entry); the arguments are owned and no longer used.
        unsafe { qjs::JS_FreeValue(shared.ctx.get(), a) };
    }
    r
}

pub fn new_js_string(py: Python<'_>, shared: &Rc<Shared>, s: &Bound<'_, PyString>) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    let v = match s.to_str() {
        // SAFETY: live (inside an entry); QuickJS copies the `text.len()` bytes at `text`.
        Ok(text) => unsafe { qjs::JS_NewStringLen(ctx, text.as_ptr() as *const _, text.len() as _) },
        Err(_) => {
            // Lone surrogates: hand QuickJS their WTF-8 form, which it reads back as surrogates.
            let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
            let b = b.cast::<PyBytes>()?.as_bytes();
            // SAFETY: live (inside an entry); QuickJS copies the `b.len()` bytes at `b`.
            unsafe { qjs::JS_NewStringLen(ctx, b.as_ptr() as *const _, b.len() as _) }
        }
    };
    owned(py, shared, v)
}

fn seq_to_js(py: Python<'_>, shared: &Rc<Shared>, items: Bound<'_, pyo3::types::PyIterator>, depth: usize) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    // SAFETY: live (inside an entry); the new value is checked by `owned`.
    let arr = owned(py, shared, unsafe { qjs::JS_NewArray(ctx) })?;
    for (i, item) in items.enumerate() {
        // A long reply handed to JS (a `client.call` result) stops at the deadline too.
        let r = poll_deadline(shared).and(item).and_then(|item| from_py(py, shared, &item, depth + 1)).and_then(|v| {
            // Consumes `v`, even on failure.
            // SAFETY: live; `arr` is owned; `v` is owned and consumed by `JS_SetPropertyUint32`.
            if unsafe { qjs::JS_SetPropertyUint32(ctx, arr, i as u32, v) } < 0 {
                return Err(take_exception(py, shared));
            }
            Ok(())
        });
        if let Err(e) = r {
            // SAFETY: live; `arr` is owned and no longer used.
            unsafe { qjs::JS_FreeValue(ctx, arr) };
            return Err(e);
        }
    }
    Ok(arr)
}

/// A key for `dict_to_js`: UTF-8 (WTF-8 for lone surrogates), as QuickJS reads it.
fn key_bytes<'a>(k: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(match s.to_str() {
            Ok(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
            Err(_) => std::borrow::Cow::Owned(
                s.call_method1("encode", ("utf-8", "surrogatepass"))?.cast::<PyBytes>()?.as_bytes().to_vec(),
            ),
        });
    }
    if k.cast::<PyInt>().is_ok() && k.cast::<PyBool>().is_err() {
        return Ok(std::borrow::Cow::Owned(k.str()?.to_str()?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err("JS object keys must be str or int"))
}

fn dict_to_js(py: Python<'_>, shared: &Rc<Shared>, d: &Bound<'_, PyDict>, depth: usize) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    // SAFETY: live (inside an entry); the new value is checked by `owned`.
    let o = owned(py, shared, unsafe { qjs::JS_NewObject(ctx) })?;
    for (k, v) in d.iter() {
        let r = poll_deadline(shared).and_then(|_| key_bytes(&k)).and_then(|key| {
            let val = from_py(py, shared, &v, depth + 1)?;
            // SAFETY: live; `o` is owned; `key` outlives the call and the atom is freed here; `val`
            // is owned and consumed by `JS_DefinePropertyValue` (or freed when no atom could be
            // made).
            unsafe {
                let atom = qjs::JS_NewAtomLen(ctx, key.as_ptr() as *const _, key.len() as _);
                if atom == 0 {
                    qjs::JS_FreeValue(ctx, val);
                    return Err(take_exception(py, shared));
                }
                // Define (not set): a key such as "__proto__" must become an own data property.
                let rc = qjs::JS_DefinePropertyValue(ctx, o, atom, val, qjs::JS_PROP_C_W_E as i32);
                qjs::JS_FreeAtom(ctx, atom);
                if rc < 0 {
                    return Err(take_exception(py, shared));
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            // SAFETY: live; `o` is owned and no longer used.
            unsafe { qjs::JS_FreeValue(ctx, o) };
            return Err(e);
        }
    }
    Ok(o)
}

/// A value QuickJS just made (owned), or the exception it threw making it (out of memory).
fn owned(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue) -> PyResult<qjs::JSValue> {
    // SAFETY: reads the tag only.
    if unsafe { qjs::JS_IsException(v) } {
        return Err(take_exception(py, shared));
    }
    Ok(v)
}
