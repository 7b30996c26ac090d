#!/usr/bin/env node
// Builds Kiln's optional oneDNN convolution kernels (native/kiln_dnnl.cc) into
// dist/native/kiln_dnnl.node, with the system C++ compiler against Node's own headers and Debian's
// libdnnl-dev. Without a compiler, headers or oneDNN the build is skipped with the reason, and the
// WASM backend keeps its own convolution kernels; KILN_REQUIRE_DNNL=1 turns a skip into a failure
// (CI sets it, so the native path cannot silently drop out of the tests).
//
// It runs as @kiln/backend-cpu's `install` script (with --on-install), so a user's `npm install`
// builds the addon on their machine; nothing built elsewhere ships. A skip there never fails the
// install, and its reason is written next to where the addon would be, for the backend to report
// when it starts (npm hides install scripts' output). In the Kiln repository itself the package's
// build does this instead, so the install step leaves it alone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'native', 'kiln_dnnl.node');
// Read by loadDnnl() in src/kernels/dnnl.ts: the reason the last build attempt skipped.
const skippedNote = path.join(path.dirname(out), 'kiln_dnnl.skipped');
const required = process.env.KILN_REQUIRE_DNNL === '1';

if (process.argv.includes('--on-install') && existsSync(path.join(here, '..', 'src'))) process.exit(0);

function skip(reason) {
  const line = `@kiln/backend-cpu: oneDNN kernels not built: ${reason}`;
  if (required) {
    console.error(`${line} (KILN_REQUIRE_DNNL=1)`);
    process.exit(1);
  }
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(skippedNote, reason + '\n');
  console.warn(`${line}; the WASM backend uses its own convolution kernels`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`only Linux builds are set up (this is ${process.platform})`);
if (process.env.KILN_DNNL === '0') skip('KILN_DNNL=0');

// Node's headers: npm's nodedir setting, then where Node itself is installed.
const nodeDirs = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'].filter(Boolean);
const nodeInclude = nodeDirs.map((d) => path.join(d, 'include', 'node')).find((d) => existsSync(path.join(d, 'node_api.h')));
if (!nodeInclude) skip(`node_api.h not found under ${nodeDirs.join(', ')} (install Node's headers)`);

const dnnlIncludes = ['/usr/include', '/usr/local/include', process.env.DNNL_ROOT && path.join(process.env.DNNL_ROOT, 'include')].filter(Boolean);
const dnnlInclude = dnnlIncludes.find((d) => existsSync(path.join(d, 'dnnl.hpp')));
if (!dnnlInclude) skip('oneDNN headers (dnnl.hpp) not found: libdnnl-dev is not installed');

const cxx = process.env.CXX || 'g++';
mkdirSync(path.dirname(out), { recursive: true });
const libDirs = process.env.DNNL_ROOT ? ['-L', path.join(process.env.DNNL_ROOT, 'lib'), `-Wl,-rpath,${path.join(process.env.DNNL_ROOT, 'lib')}`] : [];
const argv = [
  '-O2', '-ffp-contract=off', '-fno-math-errno', '-std=c++17', '-shared', '-fPIC', '-fvisibility=hidden', '-fopenmp',
  // kiln_winograd.h passes 64-byte vectors between inline functions compiled for one instruction
  // set each; GCC's note that such calls would change the ABI across sets is about other code.
  '-Wno-psabi',
  '-DNODE_GYP_MODULE_NAME=kiln_dnnl', '-DNAPI_VERSION=8',
  '-I', nodeInclude, '-I', dnnlInclude,
  path.join(here, 'kiln_dnnl.cc'),
  ...libDirs, '-ldnnl',
  '-o', out,
];
try {
  execFileSync(cxx, argv, { stdio: 'inherit' });
} catch (e) {
  skip(e.code === 'ENOENT' ? `no C++ compiler: ${cxx} not found (apt-get install g++)` : `${cxx} failed (${e.message.split('\n')[0]})`);
}
rmSync(skippedNote, { force: true });
console.log(`@kiln/backend-cpu: built ${path.relative(process.cwd(), out)}`);
