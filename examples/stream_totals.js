#!js api_version=1.0 name=stream_totals
/// <reference path="../jshost/js_lib/redis.d.ts" />
// @ts-check
//
// A stream consumer that aggregates: for every entry added to a stream whose name starts with
// `orders:`, add the entry's `amount` to a running total and count the entry, in the hash
// `totals:<stream>`. The callback is sync: entries are handled one at a time, in order, each
// locked. A stream entry may repeat a field, so `data.record` is a list of [field, value] pairs.
//
//   XADD orders:eu * amount 10.5 item pen
//   RG.FCALL stream_totals totals 1 orders:eu   -> {amount: "10.5", entries: 1, last_id: "..."}

redis.register_stream_consumer('totals', 'orders:', 1, false, (client, data) => {
  if (data.stream_name === null) return; // a stream name that is not UTF-8: skipped
  const key = `totals:${data.stream_name}`;
  for (const [field, value] of data.record) {
    if (field === 'amount' && value !== null) client.call('hincrbyfloat', key, 'amount', value);
  }
  client.call('hincrby', key, 'entries', '1');
  const [ms, seq] = data.id; // BigInts
  client.call('hset', key, 'last_id', `${ms}-${seq}`);
});

redis.register_function('totals', (client, stream) => {
  /** @type {Record<string, string>} */
  const totals = client.call('hgetall', `totals:${stream}`);
  return {
    amount: totals.amount ?? '0',
    entries: BigInt(totals.entries ?? '0'),
    last_id: totals.last_id ?? null,
  };
}, ['no-writes']);
