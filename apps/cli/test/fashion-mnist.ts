import { existsSync } from 'node:fs';

/**
 * Why the CLI's end-to-end runs cannot read Fashion-MNIST here, or undefined when they can: Debian's
 * dataset-fashion-mnist package, or a KILN_DATA_DIR the CLI reads (and may download into).
 */
export const missingFashionMnist: string | undefined =
  existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz') || process.env.KILN_DATA_DIR
    ? undefined
    : 'Fashion-MNIST not found in /usr/share/datasets/fashion-mnist and KILN_DATA_DIR is not set (apt-get install dataset-fashion-mnist)';
