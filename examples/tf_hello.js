#!js api_version=1.0 name=hello_tf
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// The hello library written for the tf API (RedisGears "Triggers and Functions", camelCase),
// loaded with TFUNCTION LOAD and called with TFCALL / TFCALLASYNC `<library>.<function>`.
// The same functions as hello.js, plus what only tf has: an options object with a description
// and flags (from `redis.functionFlags`), and `callAsync` for a command that may block.
//
//   TFUNCTION LOAD "$(cat examples/tf_hello.js)"
//   TFCALL hello_tf.hello 0 world                -> "hello world"
//   TFCALL hello_tf.counter 1 visits             -> 1, then 2, 3, ...
//   TFCALLASYNC hello_tf.slow_counter 1 visits   -> the next count
//   TFCALLASYNC hello_tf.pop 1 jobs              -> waits for an element of the list `jobs`

redis.registerFunction('hello', (client, name) => `hello ${name}`, {
  description: 'Greets its argument',
  flags: [redis.functionFlags.NO_WRITES],
});

redis.registerFunction('counter', (client, key) => client.call('incr', key), {
  description: 'Counts its calls in a key',
});

redis.registerAsyncFunction('slow_counter', async (client, key) => {
  await null; // background work goes here: no lock is held
  return client.block((c) => c.call('incr', key)); // a short locked section
});

// BLPOP through `callAsync`: the promise settles when an element arrives, without holding the
// lock meanwhile (plain `call` would return null at once instead of blocking).
redis.registerAsyncFunction('pop', async (client, key) => {
  /** @type {[string, string] | null} */
  const popped = await client.block((c) => c.callAsync('blpop', key, '0'));
  return popped === null ? null : popped[1];
});
