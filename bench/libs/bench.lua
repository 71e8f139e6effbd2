#!lua name=benchlua
-- The redis-server side of `python -m bench`: each function mirrors one of bench.js.
--
--   FCALL hello 0                -> "hello"
--   FCALL setget 1 key val       -> "val"
--   FCALL syncwork 1 key val     -> "OK"   (the anchor of scenario 4, sync and async)

redis.register_function('hello', function(keys, args)
  return 'hello'
end)

redis.register_function('setget', function(keys, args)
  redis.call('SET', keys[1], args[1])
  return redis.call('GET', keys[1])
end)

redis.register_function('syncwork', function(keys, args)
  return redis.call('SET', keys[1], args[1])
end)
