/**
 * The slice of the WebGPU API this package touches. Declared here rather than taken from
 * `@webgpu/types` so the package's declarations need no ambient types from its users.
 */
export interface AdapterInfoLike {
  /** GPU vendor (`nvidia`, `google` for SwiftShader). */
  vendor?: string;
  /** GPU architecture family, when the browser or Dawn reveals it. */
  architecture?: string;
  /** Device identifier, when revealed. */
  device?: string;
  /** Human-readable adapter name. */
  description?: string;
  /** Chrome and Dawn mark software adapters (SwiftShader) this way. */
  isFallbackAdapter?: boolean;
}

/** A `GPUAdapter`: a physical or software GPU the page or Dawn may use. */
export interface GpuAdapterLike {
  /** Adapter facts (newer browsers and Dawn). */
  readonly info?: AdapterInfoLike;
  /** True for software adapters (SwiftShader) in older implementations. */
  readonly isFallbackAdapter?: boolean;
  /** Optional features it supports (`shader-f16`, …). */
  readonly features: {
    /** Whether the feature is supported. */
    has(name: string): boolean;
  };
  /** Its limits (`maxBufferSize`, `maxStorageBufferBindingSize`, …). */
  readonly limits: Record<string, number>;
  /** Adapter facts (older browsers, before `info`). */
  requestAdapterInfo?(): Promise<AdapterInfoLike>;
  /** Opens a device on it. */
  requestDevice(descriptor?: unknown): Promise<GpuDeviceLike>;
}

/** A `GPUDevice`: an open connection to an adapter. */
export interface GpuDeviceLike {
  /** The features enabled on this device. */
  readonly features: {
    /** Whether the feature is enabled. */
    has(name: string): boolean;
  };
  /** Releases the device. */
  destroy(): void;
}

/** `navigator.gpu`, or Dawn's equivalent in Node. */
export interface GpuLike {
  /** Asks for an adapter; null when there is none. */
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapterLike | null>;
}
