#!js api_version=1.0 name=hello
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// Hello world: the smallest useful library (rg API, loaded with RG.FUNCTION LOAD).
// Shows a sync function with an argument, a sync function that runs a Redis command (integer
// replies arrive as BigInt and go back to the client as integers), and a coroutine that works in
// the background and then takes the lock for one short `block()` section.
//
//   RG.FUNCTION LOAD "$(cat examples/hello.js)"
//   RG.FCALL hello hello 0 world              -> "hello world"
//   RG.FCALL hello counter 1 visits           -> 1, then 2, 3, ...
//   RG.FCALLASYNC hello slow_counter 1 visits -> the next count, once the coroutine finishes

redis.register_function('hello', (client, name) => `hello ${name}`);

redis.register_function('counter', (client, key) => client.call('incr', key));

redis.register_async_function('slow_counter', async (client, key) => {
  await null; // background work goes here: no lock is held
  return client.block((c) => c.call('incr', key)); // a short locked section
});
