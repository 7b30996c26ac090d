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
 * One SGD update of one float32 parameter (PyTorch's formulation, as `@kiln/optim`'s `SGD`).
 * Inputs `{ param, grad }` plus `momentumBuffer` when momentum > 0; attrs
 * `{ lr, weightDecay, momentum, dampening, nesterov, first }` (`first`: the parameter's first
 * update, when the buffer starts as the gradient); outputs `[param]` plus the new buffer.
 */
export const SGD_UPDATE_KERNEL = 'KilnSgdUpdate';
