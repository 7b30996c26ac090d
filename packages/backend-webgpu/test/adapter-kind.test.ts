import { describe, expect, it } from 'vitest';
import { classifyAdapter, describeAdapter } from '../src/adapter-kind.js';

describe('classifyAdapter', () => {
  it('trusts isFallbackAdapter', () => {
    expect(classifyAdapter({ vendor: 'nvidia', isFallbackAdapter: true })).toBe('software');
    expect(classifyAdapter({ vendor: 'nvidia' }, { isFallbackAdapter: true })).toBe('software');
  });

  it('recognises software rasterisers by name', () => {
    // What Dawn reports for SwiftShader on Linux (read from the real adapter in webgpu-backend.test.ts).
    expect(classifyAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' })).toBe('software');
    expect(classifyAdapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe('software');
    expect(classifyAdapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' })).toBe('software');
  });

  it('calls real GPUs hardware', () => {
    expect(classifyAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' })).toBe('hardware');
    expect(classifyAdapter({ vendor: 'intel', architecture: 'gen-12lp' })).toBe('hardware');
    expect(classifyAdapter({ vendor: 'apple', architecture: 'metal-3' })).toBe('hardware');
  });
});

describe('describeAdapter', () => {
  it('names vendor, architecture, description and kind', () => {
    expect(describeAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' }, 'software')).toBe('google swiftshader (SwiftShader driver 5.0.0, software)');
    expect(describeAdapter({}, 'hardware')).toBe('unknown adapter (hardware)');
  });
});
