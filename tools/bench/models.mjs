// The two benchmark architectures with the same shapes in Kiln (@kiln/zoo's LeNet-5 and
// ResNet-18 with the small-input stem: 3×3 stride 1, no max-pool; 11,172,810 parameters like
// torchvision's resnet18 so modified) and in tfjs-layers. The PyTorch twins are in torch_bench.py.
import { LeNet5, ResNet } from '@kiln/zoo';

export function kilnModel(name) {
  if (name === 'lenet5') return new LeNet5({ numClasses: 10, inChannels: 1 });
  if (name === 'resnet18') return new ResNet({ depth: 18, numClasses: 10, inChannels: 1, smallInput: true });
  throw new Error(`unknown model '${name}' (expected lenet5 or resnet18)`);
}

/** The same architectures in tfjs-layers (`tfl` is the bundle built by run.mjs), softmax output. */
export function layersModel(tfl, name) {
  if (name === 'lenet5') {
    return tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, padding: 'same', activation: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({ filters: 16, kernelSize: 5, padding: 'valid', activation: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 120, activation: 'relu' }),
        tfl.layers.dense({ units: 84, activation: 'relu' }),
        tfl.layers.dense({ units: 10, activation: 'softmax' }),
      ],
    });
  }
  if (name === 'resnet18') {
    const L = tfl.layers;
    const bn = () => L.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
    const conv = (filters, kernelSize, strides) => L.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false });
    const input = tfl.input({ shape: [28, 28, 1] });
    let x = L.reLU().apply(bn().apply(conv(64, 3, 1).apply(input)));
    let c = 64;
    for (const [outC, stride] of [[64, 1], [128, 2], [256, 2], [512, 2]]) {
      for (const s of [stride, 1]) {
        let y = L.reLU().apply(bn().apply(conv(outC, 3, s).apply(x)));
        y = bn().apply(conv(outC, 3, 1).apply(y));
        const shortcut = s !== 1 || c !== outC ? bn().apply(conv(outC, 1, s).apply(x)) : x;
        x = L.reLU().apply(L.add().apply([y, shortcut]));
        c = outC;
      }
    }
    const out = L.dense({ units: 10, activation: 'softmax' }).apply(L.globalAveragePooling2d({}).apply(x));
    return tfl.model({ inputs: input, outputs: out });
  }
  throw new Error(`unknown model '${name}'`);
}
