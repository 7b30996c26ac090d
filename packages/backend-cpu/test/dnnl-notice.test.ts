import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DNNL_ENABLE_COMMAND, dnnlOffNotice } from '../src/kernels/dnnl.js';

describe('the oneDNN-off line', () => {
  it('says that oneDNN is off, why, and the command that enables it', () => {
    const line = dnnlOffNotice({ loaded: false, reason: 'the addon was not built: no C++ compiler' });
    expect(line).toContain('oneDNN kernels are off (the addon was not built: no C++ compiler)');
    expect(line).toContain(`Enable: ${DNNL_ENABLE_COMMAND}`);
    expect(line).not.toContain('\n');
  });

  it('stays quiet when oneDNN is on or was turned off on purpose', () => {
    expect(dnnlOffNotice({ loaded: false, reason: 'turned off by KILN_DNNL=0', deliberate: true })).toBeUndefined();
    expect(dnnlOffNotice({ loaded: true, addon: {} as never, path: '/x.node' })).toBeUndefined();
  });
});

describe('loadDnnl without an addon', () => {
  const saved = process.env.KILN_DNNL_ADDON;
  // These tests are about a missing addon, not about oneDNN turned off: the CI pass run with
  // KILN_DNNL=0 must not change what they see.
  const savedSwitch = process.env.KILN_DNNL;
  const dirs: string[] = [];
  beforeEach(() => {
    delete process.env.KILN_DNNL;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.KILN_DNNL_ADDON;
    else process.env.KILN_DNNL_ADDON = saved;
    if (savedSwitch === undefined) delete process.env.KILN_DNNL;
    else process.env.KILN_DNNL = savedSwitch;
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  async function freshLoad(skippedNote?: string) {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-dnnl-'));
    dirs.push(dir);
    process.env.KILN_DNNL_ADDON = path.join(dir, 'kiln_dnnl.node');
    if (skippedNote) writeFileSync(path.join(dir, 'kiln_dnnl.skipped'), `${skippedNote}\n`);
    vi.resetModules();
    const { loadDnnl } = await import('../src/kernels/dnnl.js');
    return loadDnnl();
  }

  it('reports the reason native/build.mjs left when it skipped the build', async () => {
    const s = await freshLoad('oneDNN headers (dnnl.hpp) not found: libdnnl-dev is not installed');
    expect(s).toEqual({ loaded: false, reason: 'the addon was not built: oneDNN headers (dnnl.hpp) not found: libdnnl-dev is not installed' });
  });

  it('says the install script did not run when no build left a note', async () => {
    const s = await freshLoad();
    expect(s.loaded).toBe(false);
    expect(!s.loaded && s.reason).toContain('install script did not run');
    expect(!s.loaded && s.deliberate).toBeFalsy();
  });
});
