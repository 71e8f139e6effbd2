// The jshost prelude: builds the RedisGears `redis` global of one library on top of a handful of
// native (Python) callables. It is evaluated in the library's fresh runtime before the library's
// code, and its completion value is the `install` function the host calls once.
//
// What lives here: argument checks, client objects, the replaced `Promise`, the sandbox globals.
// What lives in Python: everything that touches the store, the lock, registrations and tokens.
// Every error text comes from Python (`T`, built from jshost/errors.py): one home for each text.
(function () {
  "use strict";
  const IntrinsicPromise = Promise;
  const promiseThen = Promise.prototype.then;
  const apply = Reflect.apply;
  const AsyncFunctionPrototype = Object.getPrototypeOf(async function () {});
  const getPrototypeOf = Object.getPrototypeOf;
  const defineProperty = Object.defineProperty;
  const isArray = Array.isArray;
  const StringValueOf = String.prototype.valueOf;
  const setPrototypeOf = Object.setPrototypeOf;
  const EvalErrorC = EvalError; // (the global goes with the sandbox; the errors it makes stay)

  const isAsync = (f) => typeof f === "function" && getPrototypeOf(f) === AsyncFunctionPrototype;
  const isStringObject = (v) => {
    if (typeof v !== "object" || v === null) return false;
    try { StringValueOf.call(v); return true; } catch (e) { return false; }
  };
  // Captured now: library code may replace the global `ArrayBuffer` (or its hasInstance) later.
  const arrayBufferByteLength =
    Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get;
  const isArrayBuffer = (v) => {
    if (typeof v !== "object" || v === null) return false;
    try { arrayBufferByteLength.call(v); return true; } catch (e) { return false; }
  };

  // The only globals a library sees (plus `redis`): RedisGears' allow list (v8_backend.rs).
  const ALLOWED = new Set(("Object Function Array Number parseFloat parseInt Infinity NaN undefined " +
    "Boolean String Symbol Date Promise RegExp Error AggregateError RangeError ReferenceError " +
    "SyntaxError TypeError URIError globalThis JSON Math Intl ArrayBuffer Uint8Array Int8Array " +
    "Uint16Array Int16Array Uint32Array Int32Array Float32Array Float64Array Uint8ClampedArray " +
    "BigUint64Array BigInt64Array DataView Map BigInt Set WeakMap WeakSet Proxy Reflect " +
    "FinalizationRegistry WeakRef decodeURI decodeURIComponent encodeURI encodeURIComponent " +
    "escape unescape isFinite isNaN console WebAssembly").split(" "));

  // `eval` is gone (as in RedisGears); the Function constructors compile code from strings just the
  // same, so they go too, as in a V8 context that disallows code generation from strings: the
  // plain, async, generator and async generator constructors throw an EvalError, and no path
  // (`Function`, `f.constructor`, `getPrototypeOf(async function () {}).constructor`, their
  // prototypes) reaches the originals. `Function.prototype` and its methods stay as they are.
  function refuseCodeFromStrings(message) {
    let FunctionGuard = null;
    for (const sample of [function () {}, async function () {}, function* () {}, async function* () {}]) {
      const proto = getPrototypeOf(sample);
      const original = proto.constructor;
      const guard = function () { throw new EvalErrorC(message); };
      defineProperty(guard, "name", { value: original.name });
      defineProperty(guard, "length", { value: original.length });
      defineProperty(guard, "prototype", { value: proto, writable: false, enumerable: false, configurable: false });
      if (FunctionGuard === null) {
        FunctionGuard = guard;
        defineProperty(globalThis, "Function", { value: guard, writable: true, configurable: true });
      } else {
        setPrototypeOf(guard, FunctionGuard); // not the original Function, as %AsyncFunction%'s is
      }
      defineProperty(proto, "constructor", { value: guard, writable: false, enumerable: false, configurable: true });
    }
  }

  return function install(native, T, era, configJson, version, keepEngineGlobals) {
    const tf = era === "tf";

    // --- sandbox ---------------------------------------------------------------------------
    if (tf) ALLOWED.add("Iterator");
    // tf `DEBUG js avoid_global_allow_list`: the engine's own globals the allow list cuts stay
    // (host-only objects never existed here).
    if (keepEngineGlobals) for (const name of ["eval", "EvalError", "SharedArrayBuffer", "Atomics"]) ALLOWED.add(name);
    for (const name of Object.getOwnPropertyNames(globalThis)) {
      if (!ALLOWED.has(name)) delete globalThis[name];
    }
    // QuickJS's V8-style stack hook hands out every frame's function (the prelude's too): keep
    // it unset for good.
    defineProperty(Error, "prepareStackTrace", { value: undefined, writable: false, configurable: false });
    refuseCodeFromStrings(T.codeGeneration);
    const noop = function () {};
    const console = {};
    for (const m of ["log", "info", "warn", "error", "debug", "trace", "dir", "table", "assert",
      "count", "countReset", "group", "groupEnd", "time", "timeEnd", "timeLog"]) console[m] = noop;
    defineProperty(globalThis, "console", { value: console, writable: true, configurable: true });

    // --- argument conversion errors (best-effort V8 wording) ---------------------------------
    const convError = (pos, type, reason) => T.canNotConvert(pos, type, reason);
    const needString = (v, pos) => {
      if (typeof v === "string") return v;
      if (isStringObject(v)) return StringValueOf.call(v);
      throw convError(pos, "V8LocalUtf8", T.valueNotString);
    };
    const needArgs = (args, n, type) => {
      if (args.length < n) throw convError(args.length, type, T.wrongNumberOfArguments);
    };
    // tf's options objects, converted as RedisGears' derived converter does (called only when
    // the argument was given): anything that is an object in JS (arrays and functions too);
    // the known fields in declaration order, each checked by `fields[name]` (returns the value
    // or a reason) and deleted from the caller's object (a visible side effect, as in the
    // original); then no own enumerable property may be left.
    function optionsObject(v, pos, type, fields) {
      if (v === null || (typeof v !== "object" && typeof v !== "function")) {
        throw convError(pos, type, T.mustBeObject);
      }
      const out = {};
      for (const name of Object.keys(fields)) {
        const value = v[name];
        delete v[name];
        if (value === undefined || value === null) continue;
        const checked = fields[name](value);
        if (!checked.ok) throw convError(pos, type, T.failedGettingField(name, checked.reason));
        out[name] = checked.value;
      }
      const unknown = Object.keys(v);
      if (unknown.length) throw convError(pos, type, T.unknownProperties(unknown));
      return out;
    }
    const ok = (value) => ({ ok: true, value });
    const bad = (reason) => ({ ok: false, reason });
    const stringField = (v) => (typeof v === "string" ? ok(v)
      : isStringObject(v) ? ok(StringValueOf.call(v)) : bad(T.valueNotString));
    const arrayField = (v) => (isArray(v) ? ok(v) : bad(T.valueNotArray));
    const integerField = (v) => (Number.isInteger(v) || typeof v === "bigint" ? ok(Number(v))
      : bad(T.valueNotLong));
    const booleanField = (v) => (typeof v === "boolean" ? ok(v) : bad(T.valueNotBoolean));
    const anyField = (v) => ok(v);
    // Flag strings are checked by the API, after conversion (non-strings become null here).
    function flagList(flags, pos, type) {
      if (flags === undefined || flags === null) return [];
      if (!isArray(flags)) throw convError(pos, type, T.valueNotArray);
      return flags.map((f) => (typeof f === "string" ? f : isStringObject(f) ? StringValueOf.call(f) : null));
    }
    const prefixBytes = (p) => (typeof p === "string" || isArrayBuffer(p) ? p : undefined);

    // --- clients ------------------------------------------------------------------------------
    // Each call into a function gets a new client with a token; Python knows which token is
    // live, so a client kept past its call fails with the spec's errors.
    // A command's words: strings and ArrayBuffers as they are, String objects as their string.
    // (An index loop, not for-of and push: this runs on every client call.)
    function commandArgs(cmd, args) {
      const n = args.length;
      const out = [word(cmd)];
      for (let i = 0; i < n; i++) {
        const a = args[i];
        out[i + 1] = typeof a === "string" ? a : word(a);
      }
      return out;
    }
    function word(a) {
      if (typeof a === "string" || isArrayBuffer(a)) return a;
      if (isStringObject(a)) return StringValueOf.call(a);
      throw T.callArgumentNotBytes;
    }
    class SyncClient {
      #token;
      constructor(token) { this.#token = token; }
      call(cmd, ...args) { return native.call(this.#token, false, commandArgs(cmd, args)); }
      call_raw(cmd, ...args) { return native.call(this.#token, true, commandArgs(cmd, args)); }
      allow_block() { return native.allowBlock(this.#token); }
      run_on_background(fn) { return runOnBackground(this.#token, fn); }
      // tf names
      callRaw(cmd, ...args) { return native.call(this.#token, true, commandArgs(cmd, args)); }
      isBlockAllowed() { return native.allowBlock(this.#token); }
      executeAsync(fn) { return runOnBackground(this.#token, fn); }
      callAsync(cmd, ...args) { return callAsync(this.#token, false, commandArgs(cmd, args)); }
      callAsyncRaw(cmd, ...args) { return callAsync(this.#token, true, commandArgs(cmd, args)); }
      // RedisAI is never loaded: its entry points fail as the original's did without it.
      get redisai() {
        const token = this.#token;
        return { open_model: (name) => redisaiOpen(token, name), open_script: (name) => redisaiOpen(token, name) };
      }
    }
    // Each era sees only its own method names.
    if (tf) {
      delete SyncClient.prototype.call_raw;
      delete SyncClient.prototype.allow_block;
      delete SyncClient.prototype.run_on_background;
    } else {
      delete SyncClient.prototype.callRaw;
      delete SyncClient.prototype.isBlockAllowed;
      delete SyncClient.prototype.executeAsync;
      delete SyncClient.prototype.callAsync;
      delete SyncClient.prototype.callAsyncRaw;
    }

    class AsyncClient {
      #token;
      constructor(token) { this.#token = token; }
      // `fn` runs through the host (`runBlock`), which sees it stopped at the lock's time
      // limit: tf turns that into the catchable string `stopped`; rg lets the stop go on.
      block(fn) {
        if (typeof fn !== "function") throw T.blockNotFunction;
        const token = native.enterBlock(this.#token);
        const client = new SyncClient(token);
        let result, error;
        const outcome = native.runBlock(token, () => {
          try { result = fn(client); return 0; } catch (e) { error = e; return 1; }
        });
        if (outcome === 1) throw error;
        if (outcome !== 0) throw outcome;
        return result;
      }
      // Remote (cluster) functions: a standalone jshost is the only shard, so they
      // run here, in the background, with the serialisation round trip of the original.
      run_on_key(key, name, ...args) { return runRemote(this.#token, name, args, resultNotParsed); }
      run_on_all_shards(name, ...args) { return runOnShards(this.#token, name, args); }
      runOnKey(key, name, ...args) { return runRemote(this.#token, name, args, resultNotParsed); }
      runOnShards(name, ...args) { return runOnShards(this.#token, name, args); }
    }
    if (tf) {
      delete AsyncClient.prototype.run_on_key;
      delete AsyncClient.prototype.run_on_all_shards;
    } else {
      delete AsyncClient.prototype.runOnKey;
      delete AsyncClient.prototype.runOnShards;
    }

    // The original serialised with V8's C++ JSON::Stringify, which turns what JSON.stringify
    // leaves `undefined` (a function, undefined, a Symbol) into the text `undefined`: the other
    // side then fails to parse it. A standalone jshost runs both sides here, with the same
    // round trip, so the same errors come out.
    const stringify = JSON.stringify;
    const parse = JSON.parse;
    function serialize(value, error) {
      if (isArrayBuffer(value)) return value;
      let text;
      try { text = stringify(value); } catch (e) { throw error(e); }
      return text === undefined ? "undefined" : text;
    }
    const deserialize = (value, error) => {
      if (isArrayBuffer(value)) return value;
      try { return parse(value); } catch (e) { throw error(value); }
    };
    const resultNotParsed = () => T.failedDeserializingResult;
    // Remote functions always run with `no-writes` (an async token is a BigInt from Python,
    // db << 8 | flags).
    const noWritesToken = (token) => token - (token % 256n) + 1n;
    // runOnKey / run_on_key: the result, or a rejection; `resultError(text)` names a result
    // that does not parse.
    function runRemote(token, name, args, resultError) {
      const payload = args.map((a) => serialize(a, () => T.failedSerializingArguments));
      if (native.isDeleted()) throw T.functionWereUnregistered;
      let resolve, reject;
      const p = new IntrinsicPromise((res, rej) => { resolve = res; reject = rej; });
      native.background(async () => {
        let text;
        try {
          const fn = native.remoteFunction(name);
          const input = payload.map((a) => deserialize(a, () => T.failedDeserializingArgument));
          const result = await fn(new AsyncClient(noWritesToken(token)), ...input);
          text = serialize(result, (e) => T.failedSerializingResultWith(String(e)));
        } catch (e) {
          reject(typeof e === "string" ? e : String(e));
          return;
        }
        try { resolve(deserialize(text, resultError)); } catch (e) { reject(e); }
      }, reject);
      return p;
    }
    // runOnShards / run_on_all_shards: `[results, errors]` of the one shard; a result that does
    // not parse is an error of the list (the original crashed there).
    function runOnShards(token, name, args) {
      return runRemote(token, name, args, T.failedDeserializingResultText)
        .then((r) => [[r], []], (e) => [[], [e]]);
    }

    function runOnBackground(token, fn) {
      native.checkBackground(token);
      if (!isAsync(fn)) throw T.backgroundNeedsAsync;
      const asyncToken = native.asyncToken(token);
      let resolve, reject;
      const p = new IntrinsicPromise((res, rej) => { resolve = res; reject = rej; });
      native.background(() => {
        try { resolve(fn(new AsyncClient(asyncToken))); } catch (e) { reject(e); }
      }, reject);
      return p;
    }

    function callAsync(token, raw, args) {
      let resolve, reject;
      const p = new IntrinsicPromise((res, rej) => { resolve = res; reject = rej; });
      native.callAsync(token, raw, args, resolve, reject);
      return p;
    }

    // --- the replaced Promise ---------------------------------------------------------------
    function HostPromise(executor) {
      if (typeof executor !== "function" || isAsync(executor)) throw T.promiseBadArgument;
      let resolve, reject;
      const p = new IntrinsicPromise((res, rej) => { resolve = res; reject = rej; });
      let settled = false;
      const settler = (settle) => (value) => {
        if (native.isDeleted()) throw T.libraryWasDeleted;
        if (settled) return;
        settled = true;
        native.background(() => settle(value), null);
      };
      executor(settler(resolve), settler(reject));
      return p;
    }
    defineProperty(globalThis, "Promise", { value: HostPromise, writable: true, configurable: true });

    // --- registration -------------------------------------------------------------------------
    function registerFunction(args, isAsyncApi) {
      // Argument conversion first, then the callback check (RedisGears' order).
      needArgs(args, 2, "V8LocalValue");
      const name = needString(args[0], 0);
      const fn = args[1];
      let flags = [], description = null;
      if (tf) {
        if (args.length > 2) {
          const o = optionsObject(args[2], 2, "Option < NativeFunctionOptionalArgs >",
            { description: stringField, flags: arrayField });
          if (o.description !== undefined) description = o.description;
          flags = flagList(o.flags, 2, "Option < NativeFunctionOptionalArgs >");
        }
      } else {
        flags = flagList(args[2], 2, "Option < V8LocalArray >");
      }
      if (typeof fn !== "function") throw T.functionNotFunction;
      native.registerFunction(name, fn, flags, isAsyncApi, description);
    }

    function registerKeyspace(args) {
      let name, prefix, fn, description = null, onFired = null;
      needArgs(args, 3, "V8LocalValue");
      name = needString(args[0], 0);
      prefix = args[1];
      fn = args[2];
      let o = {};
      if (tf && args.length > 3) {
        o = optionsObject(args[3], 3, "Option < NoficationConsumerOptionalArgs >",
          { onTriggerFired: anyField, description: stringField });
        if (o.description !== undefined) description = o.description;
      }
      if (typeof fn !== "function") throw T.keyspaceCallbackNotFunction;
      if (o.onTriggerFired !== undefined) {
        if (typeof o.onTriggerFired !== "function" || isAsync(o.onTriggerFired)) throw T.onTriggerFiredNotFunction;
        onFired = o.onTriggerFired;
      }
      if (prefixBytes(prefix) === undefined) throw T.keyspaceBadPrefix;
      native.registerKeyspace(name, prefix, fn, description, onFired);
    }

    function registerStream(args) {
      let name, prefix, fn, window = 1, trim = false, description = null;
      if (tf) {
        needArgs(args, 3, "V8LocalValue");
        name = needString(args[0], 0);
        prefix = args[1];
        fn = args[2];
        if (args.length > 3) {
          const o = optionsObject(args[3], 3, "Option < StreamTriggerOptionalArgs >",
            { description: stringField, window: integerField, isStreamTrimmed: booleanField });
          if (o.description !== undefined) description = o.description;
          if (o.window !== undefined) window = o.window;
          if (o.isStreamTrimmed !== undefined) trim = o.isStreamTrimmed;
        }
        if (typeof fn !== "function") throw T.streamCallbackNotFunction;
        if (window < 1) throw T.windowNotPositive;
      } else {
        needArgs(args, 5, "V8LocalValue");
        name = needString(args[0], 0);
        prefix = args[1];
        const w = args[2];
        if (typeof w === "bigint") window = Number(w);
        else if (typeof w === "number" && (w | 0) === w) window = w;
        else throw convError(2, "i64", T.valueNotLong);
        if (typeof args[3] !== "boolean") throw convError(3, "bool", T.valueNotBoolean);
        trim = args[3];
        fn = args[4];
        if (typeof fn !== "function") throw T.streamCallbackNotFunction;
      }
      if (prefixBytes(prefix) === undefined) throw T.streamBadPrefix;
      native.registerStream(name, prefix, fn, window, trim, description);
    }

    function registerRemote(args) {
      needArgs(args, 2, "V8LocalValue");
      const name = needString(args[0], 0);
      const fn = args[1];
      if (typeof fn !== "function") throw T.remoteCallbackNotFunction;
      if (!isAsync(fn)) throw T.remoteMustBeAsync;
      native.registerRemote(name, fn);
    }

    // --- RedisAI (never loaded) -----------------------------------------------------------------
    function redisaiOpen(token, name) {
      needString(name, 0);
      native.checkClient(token);
      throw T.redisaiNotInitialized;
    }
    function createTensor(args) {
      const types = ["V8LocalUtf8", "V8LocalArray", "V8LocalArrayBuffer"];
      needArgs(args, 3, types[Math.min(args.length, 2)]);
      needString(args[0], 0);
      if (!isArray(args[1])) throw convError(1, types[1], T.valueNotArray);
      if (!isArrayBuffer(args[2])) throw convError(2, types[2], T.valueNotArrayBuffer);
      for (const d of args[1]) {
        if (typeof d !== "bigint" && !(typeof d === "number" && (d | 0) === d)) throw T.tensorDimsNotIntegers;
      }
      if (native.isDeleted()) throw T.redisaiInvalidScriptCtx;
      throw T.redisaiNotInitialized;
    }
    const redisai = { create_tensor: (...a) => createTensor(a) };

    function log(msg) {
      if (typeof msg !== "string" && !isStringObject(msg)) throw T.logNotString;
      native.log(String(msg));
    }

    const config = JSON.parse(configJson);
    const versionFn = () => "1.1";
    const engineVersion = () => version;
    const redis = tf
      ? {
        registerFunction: (...a) => registerFunction(a, false),
        registerAsyncFunction: (...a) => registerFunction(a, true),
        registerKeySpaceTrigger: (...a) => registerKeyspace(a),
        registerStreamTrigger: (...a) => registerStream(a),
        registerClusterFunction: (...a) => registerRemote(a),
        functionFlags: Object.freeze({ NO_WRITES: "no-writes", ALLOW_OOM: "allow-oom", RAW_ARGUMENTS: "raw-arguments" }),
        config, log, v8Version: engineVersion, apiVersion: versionFn, redisai,
      }
      : {
        register_function: (...a) => registerFunction(a, false),
        register_async_function: (...a) => registerFunction(a, true),
        register_notifications_consumer: (...a) => registerKeyspace(a),
        register_stream_consumer: (...a) => registerStream(a),
        register_remote_function: (...a) => registerRemote(a),
        config, log, v8_version: engineVersion, api_version: versionFn, redisai,
      };
    defineProperty(globalThis, "redis", { value: redis, writable: true, configurable: true });

    // --- entry points the host calls ------------------------------------------------------------
    return {
      // A function body: fn(client, ...args), locked.
      invokeSync: (fn, token, args) => fn(new SyncClient(token), ...args),
      // A coroutine or other background call: fn(asyncClient, ...args).
      invokeAsync: (fn, token, args) => fn(new AsyncClient(token), ...args),
      // A trigger callback: fn(client, data).
      invokeTrigger: (fn, client, data) => fn(client, data),
      // One trigger run: a function that calls `fn(client, data)` with a new client for
      // `token` (an async client when `isAsync`) and always the same `data` object, so that
      // what tf `onTriggerFired` adds to it reaches the main callback.
      triggerRun: (data) => (fn, token, isAsync) =>
        fn(isAsync ? new AsyncClient(token) : new SyncClient(token), data),
      syncClient: (token) => new SyncClient(token),
      asyncClient: (token) => new AsyncClient(token),
      stringOf: (v) => { try { return String(v); } catch (e) { return "[object]"; } },
      // Call back when `p` settles, without handing the value over: the host reads it from the
      // settled promise itself, where a value it cannot convert is its own error to report.
      watch: (p, onFulfilled, onRejected) => {
        apply(promiseThen, p, [() => { onFulfilled(); }, () => { onRejected(); }]);
      },
    };
  };
})()
