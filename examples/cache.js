#!js api_version=1.0 name=cache
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// Cache on hit, compute in the background on a miss: the example of the RedisGears RFC
// "async API refactoring". The function is registered with `register_async_function` but its
// body is a *sync* function, so it starts locked:
//   * hit: the cached value is returned at once, like any sync function;
//   * miss: `run_on_background` hands the slow part to a coroutine and returns its (pending)
//     promise. The client waits (only RG.FCALLASYNC may wait; RG.FCALL is refused), the lock is
//     free meanwhile, and short `block()` sections read the source and write the result back.
//
//   HSET source:apple price 3 quantity 4
//   RG.FCALLASYNC cache get 1 apple   -> "12" (computed, stored in cache:apple for 60 s)
//   RG.FCALLASYNC cache get 1 apple   -> "12" (from the cache, answered while locked)

const TTL_SECONDS = '60';

/**
 * The "expensive" computation: the value of a stock item, price times quantity.
 * @param {Record<string, string>} source the fields of the item's hash
 * @returns {string}
 */
function itemValue(source) {
  const price = Number(source.price ?? 0);
  const quantity = Number(source.quantity ?? 0);
  return String(price * quantity);
}

/**
 * A sync body under `register_async_function` gets a *sync* client: the annotation says so to
 * the type checker (without it, it assumes the async client that coroutines get).
 * @param {RedisGears.RgSyncClient} client
 * @param {string} item
 */
function get(client, item) {
  const cached = client.call('get', `cache:${item}`);
  if (cached !== null) return cached; // hit: a plain value, replied at once

  return client.run_on_background(async (background) => {
    /** @type {Record<string, string>} */
    const source = background.block((c) => c.call('hgetall', `source:${item}`));
    const value = itemValue(source); // the slow part: no lock is held here
    background.block((c) => c.call('set', `cache:${item}`, value, 'EX', TTL_SECONDS));
    return value;
  });
}

redis.register_async_function('get', get);
