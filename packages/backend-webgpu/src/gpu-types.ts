/**
 * The slice of the WebGPU API this package touches. Declared here rather than taken from
 * `@webgpu/types` so the package's declarations need no ambient types from its users.
 */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** Chrome and Dawn mark software adapters (SwiftShader) this way. */
  isFallbackAdapter?: boolean;
}

export interface GpuAdapterLike {
  readonly info?: AdapterInfoLike;
  readonly isFallbackAdapter?: boolean;
  readonly features: { has(name: string): boolean };
  readonly limits: Record<string, number>;
  requestAdapterInfo?(): Promise<AdapterInfoLike>;
  requestDevice(descriptor?: unknown): Promise<GpuDeviceLike>;
}

export interface GpuDeviceLike {
  readonly features: { has(name: string): boolean };
  destroy(): void;
}

export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapterLike | null>;
}
