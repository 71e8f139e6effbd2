#!js api_version=1.0 name=rollup
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// An async function (a coroutine) that awaits several short `block()` sections. Each `block`
// takes the lock, runs its commands atomically and gives the lock back; in between, the
// coroutine waits in the background and other clients' commands run. Here: add up the counters
// whose names start with a prefix, reading one counter per locked section, then write the total
// in a last section.
//
// `new Promise(...)` is the host's replaced constructor (SPEC §3.7): its promise settles in a
// later background job, so awaiting it really lets other work run. (`Promise.all` and the other
// static methods do not exist on it.)
//
//   SET hits:a 2 ; SET hits:b 3
//   RG.FCALLASYNC rollup rollup 1 hits:total hits:   -> 5, and hits:total holds "5"

/** @returns {Promise<void>} a promise that settles in a later background job */
const nextTurn = () => new Promise((resolve) => resolve(undefined));

redis.register_async_function('rollup', async (client, target, prefix) => {
  /** @type {string[]} */
  const keys = client.block((c) => c.call('keys', `${prefix}*`));
  let total = 0n;
  for (const key of keys.sort()) {
    if (key === target) continue;
    await nextTurn(); // the lock is free here
    /** @type {string | null} */
    const value = client.block((c) => c.call('get', key));
    if (value !== null) total += BigInt(value);
  }
  await nextTurn();
  client.block((c) => c.call('set', target, total.toString()));
  return total;
});
