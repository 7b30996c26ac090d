import type { InjectionToken } from 'tsyringe';
import type { Callback } from './callback.js';
import type { Logger } from './logger.js';
import type { TrainerOptions } from './trainer.js';

export const CALLBACKS: InjectionToken<Callback> = Symbol('kiln.callbacks');
export const LOGGERS: InjectionToken<Logger> = Symbol('kiln.loggers');
export const TRAINER_OPTIONS: InjectionToken<TrainerOptions> = Symbol('kiln.trainerOptions');
