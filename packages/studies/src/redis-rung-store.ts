import type { RedisClient } from 'bullmq';
import type { RungStore } from '@kiln/trainer';

// Atomically: if the trial already recorded a value at this rung, return the values before it;
// else append it and return everything before. Entries are "key\tvalue" in arrival order.
const RECORD = `
local list = redis.call('LRANGE', KEYS[1], 0, -1)
local before = {}
for _, e in ipairs(list) do
  local tab = string.find(e, '\\t', 1, true)
  if string.sub(e, 1, tab - 1) == ARGV[1] then return before end
  table.insert(before, string.sub(e, tab + 1))
end
redis.call('RPUSH', KEYS[1], ARGV[1] .. '\\t' .. ARGV[2])
return before
`;

/**
 * A study's ASHA rungs in Redis, shared by every worker: one list per rung, in the order trials
 * reached it, so the decision for a trial does not depend on which worker asks or how often.
 */
export function redisRungStore(client: RedisClient, study: string, prefix = 'kiln'): RungStore {
  client.defineCommand('kilnRungRecord', { numberOfKeys: 1, lua: RECORD });
  return {
    async record(rung, key, value) {
      const before = (await client.runCommand('kilnRungRecord', [`${prefix}:study:${study}:rung:${rung}`, key, String(value)])) as string[];
      return before.map(Number);
    },
  };
}
