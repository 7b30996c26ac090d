import type { Command } from '../command.js';
import { trainCommand } from './train.js';

/** Every `kiln` sub-command, in the order `kiln --help` lists them. */
export const COMMANDS: Command[] = [trainCommand];
