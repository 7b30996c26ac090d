import type { Command } from '../command.js';
import { trainCommand } from './train.js';
import { dataPreviewCommand } from './data-preview.js';
import { evaluateCommand } from './evaluate.js';
import { summaryCommand } from './summary.js';
import { importWeightsCommand } from './import-weights.js';
import { predictCommand } from './predict.js';
import { fineTuneCommand } from './fine-tune.js';
import { searchCommand } from './search.js';
import { workerCommand } from './worker.js';
import { tuneCommand } from './tune.js';

/** Every `kiln` sub-command, in the order `kiln --help` lists them. */
export const COMMANDS: Command[] = [trainCommand, evaluateCommand, summaryCommand, importWeightsCommand, predictCommand, fineTuneCommand, tuneCommand, dataPreviewCommand, searchCommand, workerCommand];
