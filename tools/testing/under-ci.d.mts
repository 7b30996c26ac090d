/** True under CI: `CI` is set to anything but '', '0' or 'false'. */
export function underCi(env?: Readonly<Record<string, string | undefined>>): boolean;
