/// <reference no-default-lib="true"/>
// TypeScript declarations for RedisGears 2 ("Triggers and Functions") libraries run by jshost.
//
// What this file describes: the sandbox a library's code runs in (see also
// docs/migrating-from-redisgears.md): the `redis` global, the clients given to functions and
// triggers, the reply values, the trigger data, and the replaced `Promise` constructor.
//
// Use it from an editor or with `tsc` (no tsconfig needed):
//
//     #!js api_version=1.0 name=lib
//     /// <reference path="path/to/jshost/js_lib/redis.d.ts" />
//     // @ts-check
//
//     tsc --allowJs --checkJs --noEmit --strict --target es2022 redis.d.ts lib.js
//
// (The `#!js` prologue line is a valid "shebang" line for TypeScript.) The file is installed with
// the package, next to `prelude.js`: `python -c "import jshost, os;
// print(os.path.join(os.path.dirname(jshost.__file__), 'js_lib', 'redis.d.ts'))"`.
//
// THE TWO API SURFACES. RedisGears had two eras with the same model and different names:
//   * rg, snake_case (`redis.register_function`, `client.call_raw`, `client.run_on_background`):
//     what a library gets when it is loaded with `RG.FUNCTION LOAD` (Python: `era="rg"`);
//   * tf, camelCase (`redis.registerFunction`, `client.callRaw`, `client.executeAsync`,
//     `redis.functionFlags`): what it gets when loaded with `TFUNCTION LOAD` (`era="tf"`).
// At run time a library sees ONLY the surface of the command that loaded it (nothing inside the
// library selects it). This file declares both on the one `redis` global so that either kind of
// library checks; every member says which surface it belongs to. To hold a library to one
// surface, use `RedisGears.RgApi` or `RedisGears.TfApi`, e.g.
// `/** @type {RedisGears.RgApi} */ const api = redis;`.
//
// THE ENVIRONMENT. Only RedisGears' ECMAScript globals exist: no timers (`setTimeout`), no
// I/O, no `eval`, no `SharedArrayBuffer`/`Atomics`, no `TextEncoder`; `console` methods do
// nothing. So this file replaces TypeScript's default library with the ES2022 language libraries
// minus `Promise`'s constructor, which the host replaces (see `HostPromiseConstructor`).

/// <reference lib="es5" />
/// <reference lib="es2015.core" />
/// <reference lib="es2015.collection" />
/// <reference lib="es2015.generator" />
/// <reference lib="es2015.iterable" />
/// <reference lib="es2015.proxy" />
/// <reference lib="es2015.reflect" />
/// <reference lib="es2015.symbol" />
/// <reference lib="es2015.symbol.wellknown" />
/// <reference lib="es2016.array.include" />
/// <reference lib="es2017.object" />
/// <reference lib="es2017.string" />
/// <reference lib="es2017.typedarrays" />
/// <reference lib="es2018.asyncgenerator" />
/// <reference lib="es2018.asynciterable" />
/// <reference lib="es2018.promise" />
/// <reference lib="es2018.regexp" />
/// <reference lib="es2019.array" />
/// <reference lib="es2019.object" />
/// <reference lib="es2019.string" />
/// <reference lib="es2019.symbol" />
/// <reference lib="es2020.bigint" />
/// <reference lib="es2020.promise" />
/// <reference lib="es2020.string" />
/// <reference lib="es2020.symbol.wellknown" />
/// <reference lib="es2021.promise" />
/// <reference lib="es2021.string" />
/// <reference lib="es2021.weakref" />
/// <reference lib="es2022.array" />
/// <reference lib="es2022.error" />
/// <reference lib="es2022.object" />
/// <reference lib="es2022.string" />

declare namespace RedisGears {
  // --- values ----------------------------------------------------------------------------------

  /** A command name or argument for `call` and friends: a string, a `String` object or an
   * `ArrayBuffer` (raw bytes). Numbers are refused at run time ("Failed consuming arguments.
   * Can not convert value into bytes buffer."): write `'5'`, not `5`. */
  type CommandArgument = string | String | ArrayBuffer;

  /** A RESP3 big number as `call` returns it: a `String` object. */
  type BigNumberReply = String & { readonly __reply_type: "big_number" };

  /** A RESP3 verbatim string as `call` returns it: a `String` object with its 3-letter format
   * (`"txt"`, `"mkd"`). Returned from a function, it is replied as a verbatim string. */
  type VerbatimReply = String & { readonly __reply_type: "verbatim"; readonly __format: string };

  /** A RESP3 verbatim string as `call_raw` / `callRaw` returns it. */
  type RawVerbatimReply = ArrayBuffer & {
    readonly __reply_type: "verbatim";
    readonly __format: string;
  };

  /** A RESP3 map as a plain object: string keys; integer keys become `"<n>"`. */
  interface ReplyMap {
    [field: string]: ReplyValue;
  }

  /** What `call` / `callAsync` return. Simple and bulk strings are JS strings (a
   * bulk string that is not UTF-8 throws "Could not decode value as string"); integers are
   * **BigInt**; doubles are numbers; null is `null`; arrays, sets and maps are converted element
   * by element. An error reply is thrown as a primitive string, never returned. */
  type ReplyValue =
    | string
    | bigint
    | number
    | boolean
    | null
    | ReplyValue[]
    | Set<ReplyValue>
    | ReplyMap
    | BigNumberReply
    | VerbatimReply;

  /** A RESP3 map under `call_raw`: the keys are still strings. */
  interface RawReplyMap {
    [field: string]: RawReplyValue;
  }

  /** What `call_raw` / `callRaw` / `callAsyncRaw` return: as `ReplyValue`, except that simple
   * and bulk strings come back as `ArrayBuffer`s of their bytes. */
  type RawReplyValue =
    | ArrayBuffer
    | bigint
    | number
    | boolean
    | null
    | RawReplyValue[]
    | Set<RawReplyValue>
    | RawReplyMap
    | BigNumberReply
    | RawVerbatimReply;

  /** What a function may return: any value. BigInt and 32-bit integer numbers reply
   * as integers, other numbers as doubles, strings and ArrayBuffers as bulk strings, a `String`
   * object with `__reply_type = "status"` as a simple string, arrays as arrays, a `Set` as a
   * set, `null` as null, booleans as booleans, any other object as a map of its enumerable
   * properties (so a JS `Map` replies as an empty map), and `undefined` as the bulk string
   * `"undefined"`. A promise replies with what it settles to (async commands only). */
  type FunctionResult = unknown;

  /** A value passed to or returned from a remote (cluster) function: an ArrayBuffer is sent as
   * is, anything else goes through `JSON.stringify` / `JSON.parse`. */
  type RemoteValue = any;

  // --- flags and arguments ---------------------------------------------------------------------

  /** Function flags (both surfaces; tf also names them in `redis.functionFlags`):
   * - `"no-writes"`: the function may not write (write commands are refused); it may run on a
   *   replica and when the store is out of memory;
   * - `"allow-oom"`: the function may start even when the store is out of memory;
   * - `"raw-arguments"`: arguments arrive as `ArrayBuffer`s instead of UTF-8 decoded strings. */
  type FunctionFlag = "no-writes" | "allow-oom" | "raw-arguments";

  /** The type of a function's arguments (after the client) for the given flags: `ArrayBuffer`
   * with `"raw-arguments"`, otherwise `string`. Keys and other arguments are not told apart: a
   * function is called as `fn(client, ...keys, ...args)`. */
  type ArgumentOf<F extends readonly FunctionFlag[]> = "raw-arguments" extends F[number]
    ? ArrayBuffer
    : string;

  // --- trigger data ----------------------------------------------------------------------------

  /** The `data` of a keyspace trigger callback. */
  interface KeyspaceEventData {
    /** The event name as Redis sends it: `"set"`, `"hset"`, `"del"`, `"expired"`, `"keymiss"`,
     * ... */
    event: string;
    /** The key as a string, or `null` if it is not valid UTF-8. */
    key: string | null;
    /** The key's bytes (always present; usable as a command argument). */
    key_raw: ArrayBuffer;
  }

  /** tf: the `data` of a keyspace trigger. `onTriggerFired` may add properties, which the main
   * callback then sees. */
  interface TfKeySpaceTriggerData extends KeyspaceEventData {
    [added: string]: unknown;
  }

  /** The `data` of a stream trigger callback. */
  interface StreamRecordData {
    /** The entry id as `[milliseconds, sequence]`, both **BigInt**. */
    id: [bigint, bigint];
    /** The stream's name, or `null` if it is not valid UTF-8. */
    stream_name: string | null;
    /** The stream name's bytes. */
    stream_name_raw: ArrayBuffer;
    /** The entry's `[field, value]` pairs in order (a field may repeat); a part that is not
     * valid UTF-8 is `null`. */
    record: Array<[string | null, string | null]>;
    /** The same pairs as bytes. */
    record_raw: Array<[ArrayBuffer, ArrayBuffer]>;
  }

  // --- clients ---------------------------------------------------------------------------------

  /** rg: the client of a function or sync trigger while it runs locked. It stops
   * working once the call that created it returns ("Main thread is not locked", "Used on
   * invalid client"). */
  interface RgSyncClient {
    /** Run a Redis command; the reply decoded as RedisGears decodes it (integers are BigInt). An
     * error reply is thrown as a string. Never blocks: BLPOP and the like return null at once.
     * The type parameter only narrows the result for the checker; in JS, put a JSDoc
     * `@type {string | null}` on the variable that receives it. */
    call<T extends ReplyValue = ReplyValue>(
      command: CommandArgument,
      ...args: CommandArgument[]
    ): T;
    /** As `call`, but simple and bulk strings come back as `ArrayBuffer`s. */
    call_raw<T extends RawReplyValue = RawReplyValue>(
      command: CommandArgument,
      ...args: CommandArgument[]
    ): T;
    /** Whether the function may return a pending promise (it was called with RG.FCALLASYNC, not
     * inside MULTI/EXEC); always true in triggers and `block()`. */
    allow_block(): boolean;
    /** Queue `fn(asyncClient)` as a background job and return its promise at once. Returning
     * that promise from a function needs RG.FCALLASYNC. `fn` must be an `async` function. */
    run_on_background<T>(fn: (client: RgAsyncClient) => Promise<T>): Promise<T>;
    /** RedisAI is never loaded: see `RedisAIClient`. */
    readonly redisai: RedisAIClient;
  }

  /** rg: the client of coroutines, async triggers and background jobs. It has no
   * `call`: take the lock with `block`. */
  interface RgAsyncClient {
    /** Take the lock, run `fn(syncClient)` atomically and return what it returns, synchronously
     * (a promise returned by `fn` is passed back unchanged). Throws "Main thread is already
     * blocked" when used while locked. */
    block<T>(fn: (client: RgSyncClient) => T): T;
    /** Run the remote function `remoteFunction` on the shard that owns `key` (on a single
     * instance: locally); resolves with its result. */
    run_on_key<T = any>(
      key: CommandArgument,
      remoteFunction: string,
      ...args: RemoteValue[]
    ): Promise<T>;
    /** Run the remote function on every shard; resolves with `[results, errors]`. */
    run_on_all_shards<T = any>(
      remoteFunction: string,
      ...args: RemoteValue[]
    ): Promise<[T[], string[]]>;
  }

  /** tf: the client of a function or sync trigger while it runs locked. */
  interface TfSyncClient {
    /** Run a Redis command; the reply decoded as RedisGears decodes it (integers are BigInt). An
     * error reply is thrown as a string. Never blocks. */
    call<T extends ReplyValue = ReplyValue>(
      command: CommandArgument,
      ...args: CommandArgument[]
    ): T;
    /** As `call`, but simple and bulk strings come back as `ArrayBuffer`s. */
    callRaw<T extends RawReplyValue = RawReplyValue>(
      command: CommandArgument,
      ...args: CommandArgument[]
    ): T;
    /** Run a command that may block (BLPOP, XREAD BLOCK, ...). Always returns a promise, settled
     * in a later background job; an error reply rejects it. */
    callAsync<T extends ReplyValue = ReplyValue>(
      command: CommandArgument,
      ...args: CommandArgument[]
    ): Promise<T>;
    /** As `callAsync`, with the raw decoding of `callRaw`. */
    callAsyncRaw<T extends RawReplyValue = RawReplyValue>(
      command: CommandArgument,
      ...args: CommandArgument[]
    ): Promise<T>;
    /** Whether the function may return a pending promise (TFCALLASYNC outside MULTI/EXEC);
     * always true in triggers and `block()`. */
    isBlockAllowed(): boolean;
    /** Queue `fn(asyncClient)` as a background job and return its promise at once. `fn` must be
     * an `async` function. */
    executeAsync<T>(fn: (client: TfAsyncClient) => Promise<T>): Promise<T>;
    /** RedisAI is never loaded: see `RedisAIClient`. */
    readonly redisai: RedisAIClient;
  }

  /** `client.redisai` (sync clients, both eras): RedisAI is never loaded under jshost, so both
   * methods throw the string "RedisAI is not initialize" (after converting `name`). */
  interface RedisAIClient {
    open_model(name: string): never;
    open_script(name: string): never;
  }

  /** `redis.redisai` (both eras): `create_tensor` checks its arguments (dims must be integers),
   * then throws the string "RedisAI is not initialize". */
  interface RedisAIApi {
    create_tensor(dataType: string, dims: Array<number | bigint>, data: ArrayBuffer): never;
  }

  /** tf: the client of coroutines, async triggers and background jobs. It has no `call`. */
  interface TfAsyncClient {
    /** Take the lock, run `fn(syncClient)` atomically and return what it returns,
     * synchronously. */
    block<T>(fn: (client: TfSyncClient) => T): T;
    /** Run the cluster function `remoteFunction` on the shard that owns `key`. */
    runOnKey<T = any>(
      key: CommandArgument,
      remoteFunction: string,
      ...args: RemoteValue[]
    ): Promise<T>;
    /** Run the cluster function on every shard; resolves with `[results, errors]`. */
    runOnShards<T = any>(remoteFunction: string, ...args: RemoteValue[]): Promise<[T[], string[]]>;
  }

  // --- registration options (tf) ----------------------------------------------------------------

  /** tf: options of `registerFunction` / `registerAsyncFunction`. Unknown properties are an
   * error; `null` counts as missing. */
  interface TfFunctionOptions<F extends readonly FunctionFlag[] = readonly FunctionFlag[]> {
    /** Shown by TFUNCTION LIST. */
    description?: string | null;
    /** Write them inline, e.g. `[redis.functionFlags.NO_WRITES]`, so the checker sees which. */
    flags?: [...F] | null;
  }

  /** tf: options of `registerKeySpaceTrigger`. */
  interface TfKeySpaceTriggerOptions {
    description?: string | null;
    /** A sync function called first, inside the notification, with a no-writes client. It may
     * add properties to `data`; if it throws, the main callback is not called. */
    onTriggerFired?: ((client: TfSyncClient, data: TfKeySpaceTriggerData) => void) | null;
  }

  /** tf: options of `registerStreamTrigger`. */
  interface TfStreamTriggerOptions {
    description?: string | null;
    /** How many entries per stream an async callback may have in flight (default 1, at least
     * 1). */
    window?: number | bigint | null;
    /** Trim each stream past the entries every trigger has processed (default false). */
    isStreamTrimmed?: boolean | null;
  }

  /** `redis.config`: the CONFIG JSON given at load time, parsed (`{}` without CONFIG). Numbers
   * are ordinary numbers. Checking the values is the library's job. */
  interface LibraryConfig {
    [key: string]: any;
  }

  // --- the `redis` global ----------------------------------------------------------------------

  /** The rg surface of `redis` (RG.FUNCTION LOAD; Python `era="rg"`). Registration functions
   * may only be called while the library loads ("Called '...' out of context"). */
  interface RgApi {
    /** rg. Register a sync function, called as `fn(client, ...keys, ...args)` with RG.FCALL or
     * RG.FCALLASYNC; it runs locked. `fn` must not be `async`. */
    register_function<F extends readonly FunctionFlag[] = []>(
      name: string,
      fn: (client: RgSyncClient, ...args: ArgumentOf<F>[]) => FunctionResult,
      flags?: [...F],
    ): void;
    /** rg. Register a function callable only with RG.FCALLASYNC. An `async` function is a
     * coroutine: it runs in the background with an async client (use `block` to run
     * commands), and the reply comes when its promise settles. */
    register_async_function<F extends readonly FunctionFlag[] = []>(
      name: string,
      fn: (client: RgAsyncClient, ...args: ArgumentOf<F>[]) => Promise<FunctionResult>,
      flags?: [...F],
    ): void;
    /** rg. A sync function registered as async runs locked with a sync client (it may return a
     * pending promise, e.g. from `run_on_background`). Annotate its client parameter as
     * `RedisGears.RgSyncClient` so the checker picks this form. */
    register_async_function<F extends readonly FunctionFlag[] = []>(
      name: string,
      fn: (client: RgSyncClient, ...args: ArgumentOf<F>[]) => FunctionResult,
      flags?: [...F],
    ): void;
    /** rg. A keyspace trigger: `callback(client, data)` for every event on a key starting with
     * `prefix` (bytes; `""` matches every key). A sync callback runs locked, atomically with the
     * write that fired it; its return value is ignored. */
    register_notifications_consumer(
      name: string,
      prefix: string | ArrayBuffer,
      callback: (client: RgSyncClient, data: KeyspaceEventData) => unknown,
    ): void;
    /** rg. An `async` keyspace trigger callback runs in the background with an async client.
     * Annotate its client parameter as `RedisGears.RgAsyncClient` so the checker picks this
     * form. */
    register_notifications_consumer(
      name: string,
      prefix: string | ArrayBuffer,
      callback: (client: RgAsyncClient, data: KeyspaceEventData) => Promise<unknown>,
    ): void;
    /** rg. A stream trigger: `callback(client, data)` for each entry of every stream whose
     * name starts with `prefix`, from the first entry on. `window`: entries per stream an async
     * callback may have in flight; `trim`: trim processed entries. A sync callback runs locked,
     * one entry at a time. */
    register_stream_consumer(
      name: string,
      prefix: string | ArrayBuffer,
      window: number | bigint,
      trim: boolean,
      callback: (client: RgSyncClient, data: StreamRecordData) => unknown,
    ): void;
    /** rg. An `async` stream callback (annotate its client as `RedisGears.RgAsyncClient`). */
    register_stream_consumer(
      name: string,
      prefix: string | ArrayBuffer,
      window: number | bigint,
      trim: boolean,
      callback: (client: RgAsyncClient, data: StreamRecordData) => Promise<unknown>,
    ): void;
    /** rg. A remote function for `run_on_key` / `run_on_all_shards`; must be `async`; always
     * runs with `no-writes`. */
    register_remote_function(
      name: string,
      fn: (client: RgAsyncClient, ...args: RemoteValue[]) => Promise<RemoteValue>,
    ): void;
    /** Both surfaces: the parsed CONFIG JSON (`{}` without CONFIG). */
    readonly config: LibraryConfig;
    /** Both surfaces: write one line to the host's log (Python logger `jshost.<library>`, INFO). */
    log(message: string | String): void;
    /** rg. The engine's version (jshost: the QuickJS-ng version, e.g. `"quickjs-ng 0.10.1"`). */
    v8_version(): string;
    /** rg. The API version the host installed: `"1.1"`. */
    api_version(): string;
    /** Both surfaces: the RedisAI stubs (`RedisAIApi`). */
    readonly redisai: RedisAIApi;
  }

  /** The tf surface of `redis` (TFUNCTION LOAD; Python `era="tf"`). Names of functions and
   * triggers may only use ASCII letters, digits and `_`. */
  interface TfApi {
    /** tf. Register a sync function, called as `fn(client, ...keys, ...args)` with TFCALL or
     * TFCALLASYNC `<library>.<name>`; it runs locked. `fn` must not be `async`. */
    registerFunction<F extends readonly FunctionFlag[] = []>(
      name: string,
      fn: (client: TfSyncClient, ...args: ArgumentOf<F>[]) => FunctionResult,
      options?: TfFunctionOptions<F>,
    ): void;
    /** tf. Register a function callable only with TFCALLASYNC. An `async` function is a
     * coroutine with an async client. */
    registerAsyncFunction<F extends readonly FunctionFlag[] = []>(
      name: string,
      fn: (client: TfAsyncClient, ...args: ArgumentOf<F>[]) => Promise<FunctionResult>,
      options?: TfFunctionOptions<F>,
    ): void;
    /** tf. A sync function registered as async runs locked with a sync client. Annotate its
     * client parameter as `RedisGears.TfSyncClient` so the checker picks this form. */
    registerAsyncFunction<F extends readonly FunctionFlag[] = []>(
      name: string,
      fn: (client: TfSyncClient, ...args: ArgumentOf<F>[]) => FunctionResult,
      options?: TfFunctionOptions<F>,
    ): void;
    /** tf. A keyspace trigger (see `register_notifications_consumer`). */
    registerKeySpaceTrigger(
      name: string,
      prefix: string | ArrayBuffer,
      callback: (client: TfSyncClient, data: TfKeySpaceTriggerData) => unknown,
      options?: TfKeySpaceTriggerOptions,
    ): void;
    /** tf. An `async` keyspace trigger callback (annotate its client as
     * `RedisGears.TfAsyncClient`). */
    registerKeySpaceTrigger(
      name: string,
      prefix: string | ArrayBuffer,
      callback: (client: TfAsyncClient, data: TfKeySpaceTriggerData) => Promise<unknown>,
      options?: TfKeySpaceTriggerOptions,
    ): void;
    /** tf. A stream trigger (see `register_stream_consumer`); `window` and trimming are
     * options. */
    registerStreamTrigger(
      name: string,
      prefix: string | ArrayBuffer,
      callback: (client: TfSyncClient, data: StreamRecordData) => unknown,
      options?: TfStreamTriggerOptions,
    ): void;
    /** tf. An `async` stream callback (annotate its client as `RedisGears.TfAsyncClient`). */
    registerStreamTrigger(
      name: string,
      prefix: string | ArrayBuffer,
      callback: (client: TfAsyncClient, data: StreamRecordData) => Promise<unknown>,
      options?: TfStreamTriggerOptions,
    ): void;
    /** tf. A cluster function for `runOnKey` / `runOnShards`; must be `async`. */
    registerClusterFunction(
      name: string,
      fn: (client: TfAsyncClient, ...args: RemoteValue[]) => Promise<RemoteValue>,
    ): void;
    /** tf. The flag strings by name. */
    readonly functionFlags: {
      readonly NO_WRITES: "no-writes";
      readonly ALLOW_OOM: "allow-oom";
      readonly RAW_ARGUMENTS: "raw-arguments";
    };
    /** Both surfaces: the parsed CONFIG JSON (`{}` without CONFIG). */
    readonly config: LibraryConfig;
    /** Both surfaces: write one line to the host's log (tf escapes it as Rust's
     * `escape_default` does). */
    log(message: string | String): void;
    /** tf. The engine's version (a function, although RedisGears' own `.d.ts` said string). */
    v8Version(): string;
    /** tf. The API version the host installed: `"1.1"`. */
    apiVersion(): string;
    /** Both surfaces: the RedisAI stubs (`RedisAIApi`). */
    readonly redisai: RedisAIApi;
  }

  // --- the replaced Promise constructor ----------------------------------------------------------

  /** The global `Promise` is the host's function, not the engine's:
   * - `new Promise(executor)` (or `Promise(executor)`) calls `executor(resolve, reject)` at once;
   *   the executor must not be `async` ("Bad argument to 'Promise' function");
   * - `resolve` / `reject` do not settle the promise straight away: a later background job does,
   *   so the promise is always still pending when the current code returns. Only the first call
   *   counts; after the library was deleted they throw "Library was deleted";
   * - there are no static methods (`Promise.resolve`, `Promise.all`, ... are undefined) and
   *   `p instanceof Promise` is false. Promises of `async` functions are the engine's own. */
  interface HostPromiseConstructor {
    new <T>(
      executor: (
        resolve: (value: T | PromiseLike<T>) => void,
        reject: (reason?: any) => void,
      ) => void,
    ): Promise<T>;
    <T>(
      executor: (
        resolve: (value: T | PromiseLike<T>) => void,
        reject: (reason?: any) => void,
      ) => void,
    ): Promise<T>;
  }

  /** `console`: present, and every method does nothing (there is no inspector). Use
   * `redis.log`. */
  interface Console {
    log(...data: any[]): void;
    info(...data: any[]): void;
    warn(...data: any[]): void;
    error(...data: any[]): void;
    debug(...data: any[]): void;
    trace(...data: any[]): void;
    dir(...data: any[]): void;
    table(...data: any[]): void;
    assert(condition?: boolean, ...data: any[]): void;
    count(label?: string): void;
    countReset(label?: string): void;
    group(...data: any[]): void;
    groupEnd(): void;
    time(label?: string): void;
    timeEnd(label?: string): void;
    timeLog(label?: string, ...data: any[]): void;
  }
}

/** A `String` object returned from a function replies as a simple string when
 * `__reply_type === "status"` (`const s = new String('OK'); s.__reply_type = 'status';`), as a
 * verbatim string with format `__format` (3 ASCII letters, default `"txt"`) when it is
 * `"verbatim"`, and as a bulk string otherwise. `call` returns big numbers and verbatim strings
 * as such objects. */
interface String {
  __reply_type?: "status" | "verbatim" | "big_number";
  __format?: string;
}

/** The library's API: the rg surface when loaded with RG.FUNCTION LOAD, the tf surface when
 * loaded with TFUNCTION LOAD (see the top of this file). Both are declared here; at run time a
 * library has only one of them. */
declare const redis: RedisGears.RgApi & RedisGears.TfApi;

/** The host's replacement of `Promise` (see `RedisGears.HostPromiseConstructor`). */
declare var Promise: RedisGears.HostPromiseConstructor;

/** Present, but every method does nothing. */
declare var console: RedisGears.Console;
