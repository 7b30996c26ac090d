// Whether tests run under CI, for the test helpers (require-or-skip.ts) and the summary script
// alike: `CI` set to anything but '', '0' or 'false', as CI services and .ci/run set it.
/** @param {Readonly<Record<string, string | undefined>>} [env] */
export function underCi(env = process.env) {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
