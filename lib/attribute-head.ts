// An auxiliary attribute term for training (TrainOptions.attributeWeight): a linear softmax head
// on the code's unrounded outputs p, trained with the network, so that an attribute such as
// gender is written into the code where a look-up table over bins can read it (LutClassifier).
// The head is thrown away after training: the code is what the model keeps.
//
// loss = weight * mean over the batch's labelled images of -log softmax(W p + b)[label];
// images labelled -1 carry no attribute and add nothing.
import { ScalarAdam } from './train-setup.js';

export class AttributeHead {
  /** W ([classes, dims], row-major) then b ([classes]), learnt by their own Adam. */
  readonly parameters: ScalarAdam;

  constructor(
    readonly classes: number,
    readonly dims: number,
    learningRate: number,
  ) {
    this.parameters = new ScalarAdam(new Array<number>(classes * dims + classes).fill(0), learningRate);
  }

  /**
   * The term for a batch of `count` rows of p ([count, dims]) whose attribute labels are `labels`
   * (-1: unlabelled); adds its gradient with respect to p into gradP and returns the term and the
   * gradient with respect to the head's parameters (for step()).
   */
  loss(p: Float32Array, count: number, labels: Int32Array, weight: number, gradP: Float32Array): { loss: number; gradParameters: number[] } {
    const { classes, dims } = this;
    const values = this.parameters.values;
    const bias = classes * dims;
    const grad = new Array<number>(values.length).fill(0);
    let labelled = 0;
    for (let r = 0; r < count; r++) if (labels[r] >= 0) labelled++;
    if (labelled === 0) return { loss: 0, gradParameters: grad };
    const logits = new Float64Array(classes);
    let total = 0;
    for (let r = 0; r < count; r++) {
      const label = labels[r];
      if (label < 0) continue;
      let top = -Infinity;
      for (let c = 0; c < classes; c++) {
        let z = values[bias + c];
        for (let i = 0; i < dims; i++) z += values[c * dims + i] * p[r * dims + i];
        logits[c] = z;
        top = Math.max(top, z);
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[c] - top);
      total += top + Math.log(sum) - logits[label];
      const scale = weight / labelled;
      for (let c = 0; c < classes; c++) {
        // d(-log softmax[label]) / d logit_c = softmax_c - [c == label]
        const g = scale * (Math.exp(logits[c] - top) / sum - (c === label ? 1 : 0));
        grad[bias + c] += g;
        for (let i = 0; i < dims; i++) {
          grad[c * dims + i] += g * p[r * dims + i];
          gradP[r * dims + i] += g * values[c * dims + i];
        }
      }
    }
    return { loss: (weight * total) / labelled, gradParameters: grad };
  }

  step(gradParameters: number[]): void {
    this.parameters.step(gradParameters);
  }
}
