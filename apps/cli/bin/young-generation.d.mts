/** How much V8 multiplies a semi-space by when it grows it: 1 MiB to the 16 MiB cap in one step. */
export declare const SEMI_SPACE_GROWTH_FACTOR: number;
/** The `kiln` commands that train in their own process (search's in-process trials included). */
export declare const TRAINING_COMMANDS: Set<string>;
/**
 * Makes V8 grow the young generation to its cap at its first growth, unless the user opted out
 * (`KILN_V8_DEFAULTS=1`) or chose the growth or the starting size themselves. Returns whether it
 * changed the flag.
 */
export declare function growYoungGenerationAtOnce(env?: NodeJS.ProcessEnv, execArgv?: string[]): boolean;
