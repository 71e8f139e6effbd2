//! Values across the boundary, both ways, without guessing.
//!
//! JS Number ⇄ `float` (never `int`), BigInt ⇄ `int` (any size), string ⇄ `str` (NUL-safe; lone
//! surrogates travel as Python surrogates), ArrayBuffer ⇄ `bytes`, typed arrays / DataView ⇄
//! `TypedArray`, Map/Set ⇄ `JSMap`/`JSSet`, wrapper objects ⇄ `Boxed`, Array ⇄ `list`, plain
//! objects → `dict` of their `for…in` keys (and `dict` → object), `null` ⇄ `None`, `undefined` ⇄
//! `UNDEFINED`; functions, promises and other objects become handles.

use std::rc::Rc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple};
use rquickjs::qjs;

use crate::errors::take_exception;
use crate::handles::{new_handle, JSObject};
use crate::shared::{Helper, Shared, NULL, UNDEFINED};

/// Deeper values are refused: a cycle (`a.self = a`) would otherwise recurse forever.
pub const MAX_DEPTH: usize = 512;

struct PyTypes {
    undefined: Py<PyAny>,
    typed_array: Py<PyAny>,
    js_map: Py<PyAny>,
    js_set: Py<PyAny>,
    boxed: Py<PyAny>,
}

static TYPES: PyOnceLock<PyTypes> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&'static PyTypes> {
    TYPES.get_or_try_init(py, || {
        let m = py.import("jshost.engine.values")?;
        Ok(PyTypes {
            undefined: m.getattr("UNDEFINED")?.unbind(),
            typed_array: m.getattr("TypedArray")?.unbind(),
            js_map: m.getattr("JSMap")?.unbind(),
            js_set: m.getattr("JSSet")?.unbind(),
            boxed: m.getattr("Boxed")?.unbind(),
        })
    })
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
    let r = unsafe { qjs::JS_Call(ctx, f, UNDEFINED, args.len() as i32, args.as_mut_ptr()) };
    if unsafe { qjs::JS_IsException(r) } {
        return Err(take_exception(py, shared));
    }
    Ok(r)
}

/// A JS string (borrowed) as a Python `str`.
pub fn js_string_to_py(py: Python<'_>, ctx: *mut qjs::JSContext, v: qjs::JSValue) -> PyResult<Py<PyAny>> {
    let mut len: usize = 0;
    let p = unsafe { qjs::JS_ToCStringLen2(ctx, &mut len as *mut usize as *mut _, v, false) };
    if p.is_null() {
        return Err(PyValueError::new_err("could not read a JS string (out of memory?)"));
    }
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
    let out = match std::str::from_utf8(bytes) {
        Ok(s) => Ok(PyString::new(py, s).into_any().unbind()),
        // QuickJS writes a lone surrogate as its 3-byte (WTF-8) form: Python's surrogatepass
        // reads those back as the same lone surrogate.
        Err(_) => PyBytes::new(py, bytes)
            .call_method1("decode", ("utf-8", "surrogatepass"))
            .map(|s| s.unbind()),
    };
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
    if unsafe { qjs::JS_GetLength(ctx, arr, &mut len) } < 0 {
        return Err(take_exception(py, shared));
    }
    let mut out = Vec::with_capacity(len.max(0) as usize);
    for i in 0..len {
        let item = unsafe { qjs::JS_GetPropertyUint32(ctx, arr, i as u32) };
        if unsafe { qjs::JS_IsException(item) } {
            return Err(take_exception(py, shared));
        }
        let r = to_py(py, shared, item, depth + 1);
        unsafe { qjs::JS_FreeValue(ctx, item) };
        out.push(r?);
    }
    Ok(out)
}

/// Convert a borrowed JS value to Python.
pub fn to_py(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue, depth: usize) -> PyResult<Py<PyAny>> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let ctx = shared.ctx.get();
    let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(v) };
    match tag {
        qjs::JS_TAG_INT => Ok(PyFloat::new(py, unsafe { qjs::JS_VALUE_GET_INT(v) } as f64).into_any().unbind()),
        qjs::JS_TAG_FLOAT64 => Ok(PyFloat::new(py, unsafe { qjs::JS_VALUE_GET_FLOAT64(v) }).into_any().unbind()),
        qjs::JS_TAG_BOOL => Ok(PyBool::new(py, unsafe { qjs::JS_VALUE_GET_BOOL(v) }).to_owned().into_any().unbind()),
        qjs::JS_TAG_NULL => Ok(py.None()),
        qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_UNINITIALIZED => undefined(py),
        qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => js_string_to_py(py, ctx, v),
        qjs::JS_TAG_SHORT_BIG_INT => {
            let mut n: i64 = 0;
            unsafe { qjs::JS_ToBigInt64(ctx, &mut n, v) };
            Ok(n.into_pyobject(py)?.into_any().unbind())
        }
        qjs::JS_TAG_BIG_INT => {
            let hex = call_helper(py, shared, Helper::BigToHex, &mut [v])?;
            let s = js_string_to_py(py, ctx, hex);
            unsafe { qjs::JS_FreeValue(ctx, hex) };
            let int_type = py.get_type::<PyInt>();
            Ok(int_type.call1((s?, 16))?.unbind())
        }
        qjs::JS_TAG_SYMBOL => new_handle(py, shared, dup(ctx, v)),
        qjs::JS_TAG_OBJECT => object_to_py(py, shared, v, depth),
        _ => Err(PyTypeError::new_err(format!("unsupported JS value tag {tag}"))),
    }
}

pub fn dup(ctx: *mut qjs::JSContext, v: qjs::JSValue) -> qjs::JSValue {
    unsafe { qjs::JS_DupValue(ctx, v) }
}

fn object_to_py(py: Python<'_>, shared: &Rc<Shared>, v: qjs::JSValue, depth: usize) -> PyResult<Py<PyAny>> {
    let ctx = shared.ctx.get();
    let t = types(py)?;
    unsafe {
        if qjs::JS_IsArray(v) {
            return Ok(PyList::new(py, array_to_vec(py, shared, v, depth)?)?.into_any().unbind());
        }
        if qjs::JS_IsFunction(ctx, v) || qjs::JS_IsPromise(v) {
            return new_handle(py, shared, dup(ctx, v));
        }
        if qjs::JS_IsArrayBuffer(v) {
            let mut size: usize = 0;
            let p = qjs::JS_GetArrayBuffer(ctx, &mut size as *mut usize as *mut _, v);
            let data: &[u8] = if p.is_null() { &[] } else { std::slice::from_raw_parts(p, size) };
            return Ok(PyBytes::new(py, data).into_any().unbind());
        }
        if qjs::JS_GetTypedArrayType(v) >= 0 || qjs::JS_IsDataView(v) {
            let info = call_helper(py, shared, Helper::ViewInfo, &mut [v])?;
            let parts = array_to_vec(py, shared, info, depth);
            qjs::JS_FreeValue(ctx, info);
            let parts = parts?;
            return Ok(t.typed_array.call1(py, (parts[0].clone_ref(py), parts[1].clone_ref(py)))?);
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
                return Ok(t.js_map.call1(py, (PyList::new(py, pairs)?,))?);
            }
            return Ok(t.js_set.call1(py, (PyList::new(py, list)?,))?);
        }
        let proto = qjs::JS_GetPrototype(ctx, v);
        if qjs::JS_IsException(proto) {
            return Err(take_exception(py, shared));
        }
        let plain = qjs::JS_IsNull(proto)
            || qjs::JS_VALUE_GET_PTR(proto) == qjs::JS_VALUE_GET_PTR(shared.object_proto.get());
        qjs::JS_FreeValue(ctx, proto);
        if plain {
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
        return new_js_string(py, ctx, s);
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(qjs::JS_NewFloat64(f.value()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(qjs::JSValue { u: qjs::JSValueUnion { int32: b.is_true() as i32 }, tag: qjs::JS_TAG_BOOL as i64 });
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(unsafe { qjs::JS_NewBigInt64(ctx, n) });
        }
        let text = PyString::new(py, &obj.str()?.to_cow()?);
        let mut arg = new_js_string(py, ctx, &text)?;
        let r = call_helper(py, shared, Helper::BigFromText, std::slice::from_mut(&mut arg));
        unsafe { qjs::JS_FreeValue(ctx, arg) };
        return r;
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return new_js_string(py, ctx, s);
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
        return Ok(unsafe { qjs::JS_NewArrayBufferCopy(ctx, data.as_ptr(), data.len() as _) });
    }
    if obj.cast::<PyByteArray>().is_ok() || obj.cast::<PyMemoryView>().is_ok() {
        let data: Vec<u8> = PyBytes::new(py, &[]).get_type().call1((obj,))?.extract()?;
        return Ok(unsafe { qjs::JS_NewArrayBufferCopy(ctx, data.as_ptr(), data.len() as _) });
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
        let data = from_py(py, shared, &obj.getattr("data")?, depth + 1)?;
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
        let value = match from_py(py, shared, &obj.getattr("value")?, depth + 1) {
            Ok(v) => v,
            Err(e) => {
                unsafe { qjs::JS_FreeValue(ctx, kind) };
                return Err(e);
            }
        };
        let flat = PyList::empty(py);
        for (k, v) in obj.getattr("props")?.cast::<PyDict>()?.iter() {
            flat.append(k)?;
            flat.append(v)?;
        }
        let props = match from_py(py, shared, flat.as_any(), depth + 1) {
            Ok(p) => p,
            Err(e) => {
                unsafe { qjs::JS_FreeValue(ctx, kind) };
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
        unsafe { qjs::JS_FreeValue(shared.ctx.get(), a) };
    }
    r
}

pub fn new_js_string(py: Python<'_>, ctx: *mut qjs::JSContext, s: &Bound<'_, PyString>) -> PyResult<qjs::JSValue> {
    let v = match s.to_str() {
        Ok(text) => unsafe { qjs::JS_NewStringLen(ctx, text.as_ptr() as *const _, text.len() as _) },
        Err(_) => {
            // Lone surrogates: hand QuickJS their WTF-8 form, which it reads back as surrogates.
            let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
            let b = b.cast::<PyBytes>()?.as_bytes();
            unsafe { qjs::JS_NewStringLen(ctx, b.as_ptr() as *const _, b.len() as _) }
        }
    };
    let _ = py;
    if unsafe { qjs::JS_IsException(v) } {
        return Err(PyValueError::new_err("could not create a JS string (out of memory?)"));
    }
    Ok(v)
}

fn seq_to_js(py: Python<'_>, shared: &Rc<Shared>, items: Bound<'_, pyo3::types::PyIterator>, depth: usize) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    let arr = unsafe { qjs::JS_NewArray(ctx) };
    for (i, item) in items.enumerate() {
        let v = item.and_then(|item| from_py(py, shared, &item, depth + 1));
        match v {
            Ok(v) => unsafe {
                qjs::JS_SetPropertyUint32(ctx, arr, i as u32, v);
            },
            Err(e) => {
                unsafe { qjs::JS_FreeValue(ctx, arr) };
                return Err(e);
            }
        }
    }
    Ok(arr)
}

fn dict_to_js(py: Python<'_>, shared: &Rc<Shared>, d: &Bound<'_, PyDict>, depth: usize) -> PyResult<qjs::JSValue> {
    let ctx = shared.ctx.get();
    let o = unsafe { qjs::JS_NewObject(ctx) };
    for (k, v) in d.iter() {
        let key: String = if let Ok(s) = k.cast::<PyString>() {
            s.to_cow()?.into_owned()
        } else if k.cast::<PyInt>().is_ok() && k.cast::<PyBool>().is_err() {
            k.str()?.to_cow()?.into_owned()
        } else {
            unsafe { qjs::JS_FreeValue(ctx, o) };
            return Err(PyTypeError::new_err("JS object keys must be str or int"));
        };
        let val = match from_py(py, shared, &v, depth + 1) {
            Ok(val) => val,
            Err(e) => {
                unsafe { qjs::JS_FreeValue(ctx, o) };
                return Err(e);
            }
        };
        unsafe {
            // Define (not set): a key such as "__proto__" must become an own data property.
            let atom = qjs::JS_NewAtomLen(ctx, key.as_ptr() as *const _, key.len() as _);
            qjs::JS_DefinePropertyValue(ctx, o, atom, val, qjs::JS_PROP_C_W_E as i32);
            qjs::JS_FreeAtom(ctx, atom);
        }
    }
    Ok(o)
}
