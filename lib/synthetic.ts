// A generated face set with identity structure, for tests, the README example and the demo: no
// data to download. Each identity has its own face geometry (face width and height, eye spacing and
// size, nose length, mouth width, brow height) and shading (skin and hair tone); each image of it
// varies in pose (shift, scale, in-plane rotation), lighting (direction and strength), expression
// (mouth curve, eye opening) and noise. Same-person images therefore look alike without being
// equal, which is what verification needs to be non-trivial.
import { DclError } from './errors.js';
import { describe, numberOption } from './validate.js';

export interface SyntheticFaceOptions {
  /** Number of people. Default 64. */
  identities?: number;
  /** Images per person. Default 8. */
  imagesPerIdentity?: number;
  /** Image side in pixels. Default 64. */
  size?: number;
  /** Seed: the same seed gives the same images. Default 1. */
  seed?: number;
  /** Pixel noise standard deviation (images are normalised to zero mean, unit std). Default 0.15. */
  noise?: number;
}

export interface SyntheticFaces {
  /** N x 1 x size x size grey images, each normalised to zero mean and unit standard deviation. */
  images: Float32Array;
  /** Identity of each image, 0 .. identities - 1. */
  labels: Int32Array;
  shape: [number, number, number];
}

/** A small seeded generator (splitmix32 steps) so the set depends on nothing else. */
function generator(seed: number) {
  let state = seed >>> 0 || 0x9e3779b9;
  const uniform = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
  const between = (a: number, b: number) => a + (b - a) * uniform();
  return { uniform, normal, between };
}

const intOption = (value: unknown, name: string, fallback: number, min: number, max: number) => numberOption(value, name, fallback, min, max, true);

/** Smooth step from 1 inside to 0 outside, over about one pixel: anti-aliased shapes. */
function inside(distance: number, softness: number): number {
  return 1 / (1 + Math.exp(distance / softness));
}

export function syntheticFaces(options: SyntheticFaceOptions = {}): SyntheticFaces {
  const identities = intOption(options.identities, 'identities', 64, 1, 1_000_000);
  const perIdentity = intOption(options.imagesPerIdentity, 'imagesPerIdentity', 8, 1, 10_000);
  const size = intOption(options.size, 'size', 64, 8, 1024);
  const seed = intOption(options.seed, 'seed', 1, 0, 2 ** 32 - 1);
  const noise = options.noise ?? 0.15;
  if (typeof noise !== 'number' || !(noise >= 0 && noise <= 10))
    throw new DclError('E_ARG', `Expected a number from 0 to 10 for noise but received ${describe(noise)}`);
  if (identities * perIdentity * size * size > 2 ** 31 - 1)
    throw new DclError('E_ARG', `Expected at most 2^31 - 1 pixels in all for identities x imagesPerIdentity x size^2 but received ${identities * perIdentity * size * size}`);

  const rng = generator(seed);
  const n = identities * perIdentity;
  const images = new Float32Array(n * size * size);
  const labels = new Int32Array(n);
  for (let id = 0; id < identities; id++) {
    // Identity: geometry in units of the image side, and tones.
    const face = {
      w: rng.between(0.28, 0.4), h: rng.between(0.36, 0.48),
      eyeDx: rng.between(0.12, 0.2), eyeY: rng.between(-0.12, -0.04), eyeR: rng.between(0.03, 0.06),
      browY: rng.between(0.06, 0.1), noseLen: rng.between(0.08, 0.18), noseW: rng.between(0.025, 0.05),
      mouthY: rng.between(0.16, 0.26), mouthW: rng.between(0.08, 0.16),
      skin: rng.between(0.45, 0.9), hair: rng.between(0.0, 0.4), hairLine: rng.between(-0.42, -0.26),
      background: rng.between(0.1, 0.6), cheek: rng.between(-0.1, 0.1),
    };
    for (let k = 0; k < perIdentity; k++) {
      const index = id * perIdentity + k;
      labels[index] = id;
      // Image: pose, lighting, expression.
      const dx = rng.normal() * 0.03, dy = rng.normal() * 0.03;
      const scale = 1 + rng.normal() * 0.04, angle = rng.normal() * 0.08;
      const lightAngle = rng.uniform() * 2 * Math.PI, lightStrength = rng.between(0, 0.35);
      const smile = rng.normal() * 0.04, eyeOpen = rng.between(0.6, 1.1), contrast = rng.between(0.8, 1.2);
      const cos = Math.cos(angle), sin = Math.sin(angle);
      const out = images.subarray(index * size * size, (index + 1) * size * size);
      const soft = 1 / size;
      for (let py = 0; py < size; py++)
        for (let px = 0; px < size; px++) {
          // Pixel -> face coordinates (centre 0, unit = image side), undoing the pose.
          const ux = (px + 0.5) / size - 0.5 - dx, uy = (py + 0.5) / size - 0.5 - dy;
          const x = (cos * ux + sin * uy) / scale, y = (-sin * ux + cos * uy) / scale;
          let v = face.background;
          const faceMask = inside(Math.hypot(x / face.w, y / face.h) - 1, soft * 6);
          const hairMask = inside(y - face.hairLine, soft) * faceMask + inside(Math.hypot(x / (face.w * 1.08), (y + 0.02) / (face.h * 1.05)) - 1, soft * 6) * (y < face.hairLine + 0.02 ? 1 : 0);
          v = v * (1 - faceMask) + (face.skin + face.cheek * x) * faceMask;
          v = v * (1 - Math.min(1, hairMask)) + face.hair * Math.min(1, hairMask);
          for (const side of [-1, 1]) {
            const ex = x - side * face.eyeDx, ey = y - face.eyeY;
            const eye = inside(Math.hypot(ex / face.eyeR, ey / (face.eyeR * 0.6 * eyeOpen)) - 1, 0.15);
            v = v * (1 - eye) + 0.08 * eye;
            const brow = inside(Math.abs(ey + face.browY) - 0.008, soft) * inside(Math.abs(ex) - face.eyeR * 1.4, soft);
            v = v * (1 - brow) + face.hair * brow;
          }
          const nose = inside(Math.abs(x) - face.noseW * (0.3 + (y - face.eyeY) / face.noseLen), soft) * (y > face.eyeY && y < face.eyeY + face.noseLen ? 1 : 0);
          v -= 0.12 * nose * (x > 0 ? 1 : 0.4);
          const mouthCurve = face.mouthY + smile * (1 - (x / face.mouthW) ** 2);
          const mouth = inside(Math.abs(y - mouthCurve) - 0.012, soft) * inside(Math.abs(x) - face.mouthW, soft);
          v = v * (1 - mouth) + 0.2 * mouth;
          // Lighting: a linear shading across the face in the light's direction.
          v *= 1 + lightStrength * (Math.cos(lightAngle) * x + Math.sin(lightAngle) * y) * 2;
          out[py * size + px] = v * contrast + noise * rng.normal();
        }
      // Per-image normalisation: zero mean, unit standard deviation.
      let mean = 0;
      for (let i = 0; i < out.length; i++) mean += out[i];
      mean /= out.length;
      let variance = 0;
      for (let i = 0; i < out.length; i++) variance += (out[i] - mean) ** 2;
      const inv = 1 / Math.sqrt(variance / out.length + 1e-8);
      for (let i = 0; i < out.length; i++) out[i] = (out[i] - mean) * inv;
    }
  }
  return { images, labels, shape: [1, size, size] };
}
