import type { InjectionToken } from 'tsyringe';
import type { Callback } from './callback.js';
import type { Logger } from './logger.js';
import type { TrainerOptions } from './trainer.js';

/** Injection token of a run's callbacks (`@injectAll(CALLBACKS)`). */
export const CALLBACKS: InjectionToken<Callback> = Symbol('kiln.callbacks');
/** Injection token of a run's loggers. */
export const LOGGERS: InjectionToken<Logger> = Symbol('kiln.loggers');
/** Injection token of the Trainer's options. */
export const TRAINER_OPTIONS: InjectionToken<TrainerOptions> = Symbol('kiln.trainerOptions');
