#!js api_version=1.0 name=last_updated
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// A keyspace trigger (rg: "notifications consumer") that stamps every hash under `user:` with
// the time of its last change, in the field `__last_updated__`. The callback is sync, so it runs
// locked and atomically with the write that fired it. Writes made by JS never fire triggers
// (SPEC §7.4), so the stamp does not fire the trigger again.
//
//   HSET user:1 name alice                  -> the trigger sets user:1 __last_updated__ <ms>
//   RG.FCALL last_updated last_updated 1 user:1   -> <ms> as an integer, or null

redis.register_notifications_consumer('stamp', 'user:', (client, data) => {
  // data.key is null for a key that is not UTF-8; key_raw always works as an argument.
  if (client.call('type', data.key_raw) !== 'hash') return; // deleted, expired or not a hash
  client.call('hset', data.key_raw, '__last_updated__', Date.now().toString());
});

redis.register_function('last_updated', (client, key) => {
  /** @type {string | null} */
  const stamp = client.call('hget', key, '__last_updated__');
  return stamp === null ? null : BigInt(stamp); // a BigInt replies as an integer
}, ['no-writes']);
