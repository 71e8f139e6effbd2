#!js api_version=1.0 name=bench
// The jshost side of `python -m bench`; bench.lua mirrors every function for redis-server.
//
//   RG.FCALL bench hello 0                          -> "hello"       (1: a constant)
//   RG.FCALL bench setget 1 key val                 -> "val"         (2: one write, one read)
//   RG.FCALLASYNC bench asyncwork 1 key val         -> "OK"          (4: a coroutine, one block())
//   RG.FCALL bench syncwork 1 key val               -> "OK"          (4: the same work, sync)
//   RG.FCALLASYNC bench park 0                      -> "released"    (5: waits for `release`)
//   RG.FCALL bench release 0 [max]                  -> how many parked calls it released
//                                                      (all, or at most `max` of them)
//   RG.FCALL bench parked 0                         -> how many calls are parked right now

redis.register_function('hello', () => 'hello');

redis.register_function('setget', (client, key, value) => {
  client.call('set', key, value);
  return client.call('get', key);
});

redis.register_async_function('asyncwork', async (client, key, value) => {
  return await client.block((c) => c.call('set', key, value));
});

redis.register_function('syncwork', (client, key, value) => client.call('set', key, value));

const parked = [];

redis.register_async_function('park', async () => {
  await new Promise((resolve) => parked.push(resolve));
  return 'released';
});

redis.register_function('release', (client, max) => {
  // In batches: resolving thousands at once can outlast lock-redis-timeout (500 ms).
  const count = max === undefined ? parked.length : Math.min(parked.length, Number(max));
  const waiting = parked.splice(0, count);
  for (const resolve of waiting) {
    resolve();
  }
  return waiting.length;
});

redis.register_function('parked', () => parked.length);
