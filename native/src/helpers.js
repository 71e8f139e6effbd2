// Conversion helpers, evaluated once per runtime before any library code runs. They capture
// the intrinsics they use at creation and call them through the captured `Reflect.apply`,
// without iterators, spreading or `push`, so library code that later replaces `Array.from`,
// `Array.prototype.push`, `Function.prototype.call`, `Map`, an iterator's `next` and so on cannot
// change how values cross the boundary. Indexes match `Helper` in shared.rs.
(function () {
  "use strict";
  const apply = Reflect.apply;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const getPrototypeOf = Object.getPrototypeOf;
  const defineProperty = Object.defineProperty;
  const toObject = Object;
  const toStr = String;
  const bigint = BigInt;
  const bigToString = BigInt.prototype.toString;
  const MapC = Map, SetC = Set, ErrorC = Error;
  const mapSet = Map.prototype.set, setAdd = Set.prototype.add;
  const mapEntries = Map.prototype.entries, setValues = Set.prototype.values;
  const mapIterNext = getPrototypeOf(new Map().entries()).next;
  const setIterNext = getPrototypeOf(new Set().values()).next;
  const getter = (proto, name) => getOwnPropertyDescriptor(proto, name).get;
  const dvBuffer = getter(DataView.prototype, "buffer");
  const dvOffset = getter(DataView.prototype, "byteOffset");
  const dvLength = getter(DataView.prototype, "byteLength");
  const unboxers = [
    "string", String.prototype.valueOf,
    "number", Number.prototype.valueOf,
    "boolean", Boolean.prototype.valueOf,
    "bigint", BigInt.prototype.valueOf,
    "symbol", Symbol.prototype.valueOf,
  ];
  const boxers = { string: String, number: Number, boolean: Boolean };
  const views = {
    Uint8ClampedArray, Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array,
    BigInt64Array, BigUint64Array, Float32Array, Float64Array, DataView,
  };
  if (typeof Float16Array === "function") views.Float16Array = Float16Array;
  const isIndex = (k, len) => {
    const n = +k;
    return n >= 0 && n < len && toStr(n >>> 0) === k;
  };

  // 0: for...in keys (own and inherited enumerable), flattened [k0, v0, k1, v1, ...]
  function forIn(o) {
    const r = [];
    let n = 0;
    for (const k in o) {
      r[n++] = k;
      r[n++] = o[k];
    }
    return r;
  }
  function drain(it, next) {
    const r = [];
    let n = 0;
    for (let step = apply(next, it, []); !step.done; step = apply(next, it, [])) r[n++] = step.value;
    return r;
  }
  // 1: Map entries ([key, value] arrays) in insertion order
  const mapItems = (m) => drain(apply(mapEntries, m, []), mapIterNext);
  // 2: Set members in insertion order
  const setItems = (s) => drain(apply(setValues, s, []), setIterNext);
  // 3: a wrapper object's kind, primitive and own extra properties, or null
  function unbox(o) {
    for (let i = 0; i < unboxers.length; i += 2) {
      const kind = unboxers[i];
      let v;
      try { v = apply(unboxers[i + 1], o, []); } catch (e) { continue; }
      const props = [];
      let n = 0;
      for (const k in o) {
        if (kind === "string" && isIndex(k, v.length)) continue;
        props[n++] = k;
        props[n++] = o[k];
      }
      return [kind, v, props];
    }
    return null;
  }
  // 4: build a wrapper object (kind "arraybuffer": the ArrayBuffer itself) with extra properties
  function box(kind, v, props) {
    let o;
    if (kind === "arraybuffer") o = v;
    else if (kind === "symbol" || kind === "bigint") o = toObject(v);
    else o = new boxers[kind](v);
    for (let i = 0; i < props.length; i += 2) {
      defineProperty(o, props[i], { value: props[i + 1], writable: true, enumerable: true, configurable: true });
    }
    return o;
  }
  // 5: a typed array or DataView over a copy of the bytes
  const makeView = (kind, buf) => new views[kind](buf);
  // 6: the buffer, byte offset and byte length behind a DataView (typed arrays are read natively)
  const viewInfo = (v) => [apply(dvBuffer, v, []), apply(dvOffset, v, []), apply(dvLength, v, [])];
  // 7, 8: Map and Set from items
  function makeMap(items) {
    const m = new MapC();
    for (let i = 0; i < items.length; i++) apply(mapSet, m, [items[i][0], items[i][1]]);
    return m;
  }
  function makeSet(items) {
    const s = new SetC();
    for (let i = 0; i < items.length; i++) apply(setAdd, s, [items[i]]);
    return s;
  }
  // 9, 10: BigInt <-> hexadecimal text, for values beyond 64 bits
  const bigFromHex = (hex, negative) => (negative ? -bigint("0x" + hex) : bigint("0x" + hex));
  const bigToHex = (b) => apply(bigToString, b, [16]);
  // 11: String(v) that cannot throw
  function safeString(v) {
    try { return toStr(v); } catch (e) {
      try { return "[unprintable " + typeof v + "]"; } catch (e2) { return "[unprintable]"; }
    }
  }
  // 12: an Error with a message (for Python exceptions raised into JS)
  const makeError = (msg) => new ErrorC(msg);
  // 13: p.then(onFulfilled, onRejected) through the intrinsic `then`
  const then = Promise.prototype.then;
  const promiseThen = (p, ok, err) => apply(then, p, [ok, err]);
  return [forIn, mapItems, setItems, unbox, box, makeView, viewInfo, makeMap, makeSet,
    bigFromHex, bigToHex, safeString, makeError, promiseThen];
})()
