/**
 * @kiln/studies — Kiln studies (random, grid search, cross-validation) on a BullMQ job queue, so any
 * number of machines work through one study. Node only; @kiln/trainer keeps the in-process executor.
 */
export { queueExecutor, type QueueExecutorOptions } from './queue-executor.js';
export { startTrialWorker, type TrialWorker, type TrialWorkerOptions } from './worker.js';
export { redisRungStore } from './redis-rung-store.js';
export { DEFAULT_QUEUE, connectionReporter, redisConnection, trialJobId, type RedisConnection, type TrialJobData, type TrialJobResult } from './connection.js';
export { startRedisServer, freePort, type RedisServer, type RedisServerOptions } from './redis-server.js';
