/**
 * Optional fused kernels: names a backend may register to run a composite operation as one kernel,
 * and that layers look up before falling back to the composite. The contract lives here so that
 * neither side depends on the other.
 */

/**
 * Batch normalisation in training mode over the last axis of NHWC ([N, H, W, C]) or [N, C] float32
 * input. Inputs `{ x, gamma, beta }`, attrs `{ epsilon }`; outputs `[y, mean, variance]`, where mean
 * and variance ([C]) are the batch statistics over every axis but the last (variance biased:
 * divided by the number of values per channel) and y = gamma·(x − mean)/√(variance + epsilon) + beta.
 */
export const BATCH_NORM_TRAINING_KERNEL = 'KilnBatchNormTraining';

/**
 * The gradient of {@link BATCH_NORM_TRAINING_KERNEL}: inputs `{ x, dy, mean, variance, gamma }`
 * (the statistics the forward pass returned), attrs `{ epsilon }`; outputs `[dx, dgamma, dbeta]`.
 */
export const BATCH_NORM_TRAINING_GRAD_KERNEL = 'KilnBatchNormTrainingGrad';

/**
 * One Adam/AdamW update of one float32 parameter, as `@kiln/optim`'s `Adam` computes it op by op.
 * Inputs `{ param, grad, expAvg, expAvgSq }` plus `maxExpAvgSq` with AMSGrad; attrs
 * `{ lr, beta1, beta2, eps, weightDecay, decoupled, step }` (`step` = t, counting this update;
 * `decoupled` = AdamW's decay of the weights instead of L2 in the gradient); outputs
 * `[param, expAvg, expAvgSq]` plus `maxExpAvgSq` with AMSGrad, the new values (the optimizer assigns them).
 */
export const ADAM_UPDATE_KERNEL = 'KilnAdamUpdate';

/**
 * `ADAM_UPDATE_KERNEL`'s update of several float32 parameters in one kernel call (PyTorch's
 * multi-tensor `foreach` Adam): for a small network tfjs's bookkeeping per kernel call costs more
 * than the update itself. Inputs `param<i>`, `grad<i>`, `expAvg<i>`, `expAvgSq<i>` (plus
 * `maxExpAvgSq<i>` with AMSGrad) for i = 0 … `count` − 1; attrs `ADAM_UPDATE_KERNEL`'s with
 * `steps` (each parameter's t, this update included) in place of `step`, and `count`; outputs
 * `ADAM_UPDATE_KERNEL`'s outputs for parameter 0, then for parameter 1, and so on. Each parameter's
 * results are bit for bit what `ADAM_UPDATE_KERNEL` returns for it.
 */
export const ADAM_UPDATE_MULTI_KERNEL = 'KilnAdamUpdateMulti';

/**
 * One SGD update of one float32 parameter (PyTorch's formulation, as `@kiln/optim`'s `SGD`).
 * Inputs `{ param, grad }` plus `momentumBuffer` when momentum > 0; attrs
 * `{ lr, weightDecay, momentum, dampening, nesterov, first }` (`first`: the parameter's first
 * update, when the buffer starts as the gradient); outputs `[param]` plus the new buffer.
 */
export const SGD_UPDATE_KERNEL = 'KilnSgdUpdate';

/**
 * A dense layer's forward pass as one kernel: y = act(x·W + b) for float32 x [N, K], W [K, M] and
 * an optional bias [M]. Inputs `{ x, weight, bias? }`, attrs `{ activation: 'linear' | 'relu' }`;
 * output `y` [N, M]. (tfjs's `_FusedMatMul` takes rank-3 operands, so a 2-D layer would pay three
 * reshapes, each a recorded op under a gradient tape.) `@kiln/layers` registers its gradient.
 */
export const LINEAR_KERNEL = 'KilnLinear';

/**
 * The gradients of y = relu(z + b), b broadcast over the last axis, from the output: inputs
 * `{ dy, y }` of one shape (float32); outputs `[dz, db]` with dz = dy where y > 0 and 0 elsewhere,
 * and db [C] = dz summed over every axis but the last. One kernel where tfjs runs four (ReLU's
 * gradient is a cast, a step and a multiply; the bias's a sum).
 */
export const BIAS_RELU_GRAD_KERNEL = 'KilnBiasReluGrad';

/**
 * Softmax cross-entropy of float32 logits [N, K] against int32 labels [N], as `@kiln/layers`'
 * `crossEntropy` defines it without class weights (PyTorch's `cross_entropy`). Inputs
 * `{ logits, labels }`; attrs `{ labelSmoothing, ignoreIndex, reduction }` (`ignoreIndex` null for
 * none; `reduction` 'mean' | 'sum' | 'none'); output the loss, a scalar or [N] for 'none'. A label
 * outside [0, K) other than `ignoreIndex` is an error.
 */
export const SOFTMAX_CROSS_ENTROPY_KERNEL = 'KilnSoftmaxCrossEntropy';

/**
 * The gradient of {@link SOFTMAX_CROSS_ENTROPY_KERNEL} with respect to the logits: inputs
 * `{ logits, labels, dy }` (dy: the loss's gradient, a scalar or [N]); the same attrs; output
 * dlogits [N, K].
 */
export const SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL = 'KilnSoftmaxCrossEntropyGrad';

/**
 * 2-D max pooling of float32 NHWC input that also returns where each maximum came from, so that
 * its gradient is a scatter instead of a second search of every window (tfjs's `MaxPoolGrad`
 * recomputes the argmax from the input and the output). Inputs `{ x }` [N, H, W, C]; attrs
 * `{ filterSize: [KH, KW], strides: [SH, SW], pad: [top, left], outShape: [OH, OW], inputShape }`
 * (`inputShape`: x's shape, so that the gradient can size dx without keeping x): window
 * (oh, ow) covers rows oh·SH − top … oh·SH − top + KH − 1 and the columns likewise, clipped to the
 * input, so padding never wins (PyTorch's −∞ padding and ceil mode, tfjs's 'same' and 'valid'
 * alike); every window must overlap the input. Outputs `[y, argmax]`, both [N, OH, OW, C]: y
 * float32, and argmax int32, the index within its image, (ih·W + iw)·C + c, of the first maximum
 * in row-major window order (tfjs's and PyTorch's rule for ties, which matters after a ReLU where
 * whole windows are 0), comparing with `>`: a NaN is never taken over a number, and a window with
 * nothing above −∞ gives its first cell. y is x at argmax. `@kiln/layers` registers its gradient.
 */
export const MAX_POOL_ARGMAX_KERNEL = 'KilnMaxPoolArgmax';

/**
 * The gradient of {@link MAX_POOL_ARGMAX_KERNEL} with respect to x: inputs `{ dy, argmax }` (dy
 * float32 and argmax int32, both [N, OH, OW, C]), attrs `{ inputShape: [N, H, W, C] }` (the forward
 * call's attrs will do); output dx, zero except that each dy is added at its argmax in its image
 * (added, since overlapping windows can share a maximum).
 */
export const MAX_POOL_ARGMAX_GRAD_KERNEL = 'KilnMaxPoolArgmaxGrad';
