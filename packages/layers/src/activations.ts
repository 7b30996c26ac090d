import { tf } from '@kiln/core';
import { Module, type Tensor } from './module.js';

/** Element-wise activation functions, usable directly or through the modules below. */
export const relu = (x: Tensor): Tensor => tf.relu(x);
export const relu6 = (x: Tensor): Tensor => tf.relu6(x);
export const sigmoid = (x: Tensor): Tensor => tf.sigmoid(x);
export const tanh = (x: Tensor): Tensor => tf.tanh(x);
export const identity = (x: Tensor): Tensor => tf.clone(x);
export const softmax = (x: Tensor, axis = -1): Tensor => tf.softmax(x, axis);
export const logSoftmax = (x: Tensor, axis = -1): Tensor => tf.logSoftmax(x, axis);

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}
export class ReLU6 extends Module {
  forward(x: Tensor): Tensor {
    return relu6(x);
  }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return identity(x);
  }
}
export class Softmax extends Module {
  constructor(private readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.axis);
  }
}
