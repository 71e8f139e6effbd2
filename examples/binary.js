#!js api_version=1.0 name=binary
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// Binary data. With the `raw-arguments` flag every argument arrives as an ArrayBuffer, with no
// UTF-8 decoding (without it, an argument that is not UTF-8 fails the call with
// "Can not convert argument to string"). ArrayBuffers can be passed to `client.call` as command
// arguments, `call_raw` returns bulk replies as ArrayBuffers, and a returned ArrayBuffer is
// replied as a bulk string of its bytes.
//
//   RG.FCALL binary store_reversed 1 blob "\x00\xff\x10"   -> 3; blob now holds "\x10\xff\x00"
//   RG.FCALL binary hex 1 blob                             -> "10ff00"
//   RG.FCALL binary xor 1 blob "\xff"                      -> the bytes of blob XOR 0xff

redis.register_function('store_reversed', (client, key, data) => {
  const bytes = new Uint8Array(data).slice().reverse();
  client.call('set', key, bytes.buffer);
  return bytes.length;
}, ['raw-arguments']);

/**
 * @param {ArrayBuffer} buffer
 * @returns {string} the bytes as lowercase hex
 */
function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

redis.register_function('hex', (client, key) => {
  /** @type {ArrayBuffer | null} */
  const value = client.call_raw('get', key); // `call` would throw on bytes that are not UTF-8
  return value === null ? null : toHex(value);
}, ['raw-arguments', 'no-writes']);

redis.register_function('xor', (client, key, mask) => {
  /** @type {ArrayBuffer | null} */
  const value = client.call_raw('get', key);
  if (value === null) return null;
  const m = new Uint8Array(mask);
  if (m.length === 0) throw 'the mask must not be empty';
  return new Uint8Array(value).map((b, i) => b ^ m[i % m.length]).buffer; // bytes, as is
}, ['raw-arguments', 'no-writes']);
