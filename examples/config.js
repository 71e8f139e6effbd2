#!js api_version=1.0 name=greeter
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// Library configuration. `redis.config` is the JSON object given with CONFIG at load time
// (an empty object without it). The host only checks that it is a JSON object: checking the
// values is the library's job, and a value thrown while loading fails the load with
// "Failed loading library: <what was thrown>.".
//
//   RG.FUNCTION LOAD CONFIG '{"greeting": "hi", "ttl": 10}' "$(cat examples/config.js)"
//   RG.FCALL greeter greet 0 world          -> "hi world"
//   RG.FCALL greeter remember 1 k v         -> "OK"; k expires after 10 s

const config = { greeting: 'hello', ttl: 60, ...redis.config }; // defaults, then CONFIG

if (typeof config.greeting !== 'string') throw 'greeting must be a string';
if (!Number.isInteger(config.ttl) || config.ttl <= 0) {
  throw `ttl must be a positive integer, got ${JSON.stringify(config.ttl)}`;
}
const ttl = String(config.ttl); // command arguments must be strings (or ArrayBuffers)

redis.register_function('greet', (client, name) => `${config.greeting} ${name}`, ['no-writes']);

redis.register_function('remember', (client, key, value) =>
  client.call('set', key, value, 'EX', ttl));
