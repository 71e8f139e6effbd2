// Conversion helpers, evaluated once per runtime before any library code runs. They capture
// the intrinsics they use at creation, so library code that later replaces `Array.from` or
// `String` cannot change how values cross the boundary. Indexes match `Helper` in shared.rs.
(function () {
  "use strict";
  const from = Array.from;
  const mapEntries = Map.prototype.entries;
  const setValues = Set.prototype.values;
  const toStr = String;
  const bigint = BigInt;
  const defineProperty = Object.defineProperty;
  const unboxers = [
    ["string", String.prototype.valueOf],
    ["number", Number.prototype.valueOf],
    ["boolean", Boolean.prototype.valueOf],
    ["bigint", BigInt.prototype.valueOf],
    ["symbol", Symbol.prototype.valueOf],
  ];
  const boxers = { string: String, number: Number, boolean: Boolean, bigint: BigInt, symbol: Symbol };
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
    for (const k in o) r.push(k, o[k]);
    return r;
  }
  // 1: Map entries in insertion order
  const mapItems = (m) => from(mapEntries.call(m));
  // 2: Set members in insertion order
  const setItems = (s) => from(setValues.call(s));
  // 3: a wrapper object's kind, primitive and own extra properties, or null
  function unbox(o) {
    for (const [kind, valueOf] of unboxers) {
      let v;
      try { v = valueOf.call(o); } catch (e) { continue; }
      const props = [];
      for (const k in o) {
        if (kind === "string" && isIndex(k, v.length)) continue;
        props.push(k, o[k]);
      }
      return [kind, v, props];
    }
    return null;
  }
  // 4: build a wrapper object
  function box(kind, v, props) {
    const o = kind === "symbol" || kind === "bigint" ? Object(v) : new boxers[kind](v);
    for (let i = 0; i < props.length; i += 2) {
      defineProperty(o, props[i], { value: props[i + 1], writable: true, enumerable: true, configurable: true });
    }
    return o;
  }
  // 5: a typed array or DataView over a copy of the bytes
  const makeView = (kind, buf) => new views[kind](buf);
  // 6: the bytes behind a typed array or DataView, and its constructor name
  function viewInfo(v) {
    for (const kind in views) {
      if (v instanceof views[kind]) {
        return [kind, v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)];
      }
    }
    return ["Uint8Array", new ArrayBuffer(0)];
  }
  // 7, 8: Map and Set from items
  const makeMap = (items) => new Map(items);
  const makeSet = (items) => new Set(items);
  // 9, 10: BigInt <-> hexadecimal text, for values beyond 64 bits
  const bigFromText = (s) => bigint(s);
  const bigToHex = (b) => b.toString(16);
  // 11: String(v) that cannot throw
  function safeString(v) {
    try { return toStr(v); } catch (e) {
      try { return "[unprintable " + typeof v + "]"; } catch (e2) { return "[unprintable]"; }
    }
  }
  // 12: an Error with a message (for Python exceptions raised into JS)
  const makeError = (msg) => new Error(msg);
  // 13: fn.then(onFulfilled, onRejected) through the intrinsic `then`
  const then = Promise.prototype.then;
  const promiseThen = (p, ok, err) => then.call(p, ok, err);
  return [forIn, mapItems, setItems, unbox, box, makeView, viewInfo, makeMap, makeSet,
    bigFromText, bigToHex, safeString, makeError, promiseThen];
})()
