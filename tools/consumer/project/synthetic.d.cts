export declare function synthetic(n: number, numClasses: number, seed: number): { x: Float32Array; y: Int32Array; shape: number[] };
