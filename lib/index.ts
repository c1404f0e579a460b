// dcl-native: compact face codes packed into one int32, on hand-written native kernels.
import { applyEnvironment } from './runtime.js';

export { DclError } from './errors.js';
export type { DclErrorCode } from './errors.js';
export { Tensor, CpuStorage } from './tensor.js';
export type { Device, Storage, TensorLike } from './tensor.js';
export { capabilities, setIsa, setThreads, withIsa, measureFmaPeak, ALL_ISAS } from './runtime.js';
export { setConvAlgorithm, convAlgorithm, ALL_CONV_ALGORITHMS } from './runtime.js';
export type { Capabilities, Isa, ConvAlgorithm, CudaCapabilities, CudaDeviceInfo } from './runtime.js';
// The CUDA backend: the ops on the GPU (host tensors in and out), device buffers, the device's
// limits. Every function throws E_CUDA with the reason where CUDA is not usable.
export * as cuda from './cuda.js';
export { cudaStatus, cudaAvailable, CudaBuffer, CUDA_KNN_MAX_K } from './cuda.js';
export type { CudaConv2dOptions, CudaPool2dOptions, CudaPairBatchOptions, CudaPairLossResult, CudaAdamOptions } from './cuda.js';
export * as ops from './ops.js';
export {
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dPrepare,
  conv2dPrepared,
  maxPool2d,
  maxPool2dBackward,
  absTanh,
  absTanhBackward,
  absTanhMaxPool2d,
  absTanhMaxPool2dBackward,
  sigmoid,
  sigmoidBackward,
  linear,
  linearBackwardInput,
  linearBackwardWeight,
} from './ops.js';
export type { Conv2dOptions, Conv2dWeightGradOptions, Pool2dOptions, PreparedConv2dWeight } from './ops.js';

// DCL_ISA / DCL_THREADS / DCL_CONV_ALGO are read once, when the package is first imported.
applyEnvironment();

// Autograd, layers, optimisers and seeded random numbers.
export * as autograd from './autograd.js';
export { Var, BufferSite, backward, noGrad, isGradEnabled, zeroGrad, parameter, customOp, endStep, startProfiling, stopProfiling } from './autograd.js';
export { inference } from './autograd.js';
export type { BackwardContext, BackwardFn, VarLike, VarOptions, BackwardOptions, CustomOpOptions, OpTiming } from './autograd.js';
export * as nn from './nn.js';
export { Module, Conv2d, Linear, MaxPool2d, AbsTanh, Sigmoid, Flatten, Sequential, DclS, dclS, initialize, BatchNorm1d } from './nn.js';
export type { DclSOptions, DclSConfig, Initializer, InitOptions, NamedArray } from './nn.js';
export { AbsTanhMaxPool2d } from './nn.js';
export * as optim from './optim.js';
export {
  SGD,
  Adam,
  AdamW,
  clipGradNorm,
  gradNorm,
  constantSchedule,
  warmupSchedule,
  cosineSchedule,
  stepSchedule,
  scheduleFromSpec,
} from './optim.js';
export type { Schedule, ScheduleSpec, OptimizerState } from './optim.js';
export { Rng, manualSeed, defaultGenerator } from './random.js';
export type { RngState } from './random.js';

// Code layouts (quantize, pack, distances) and the compactness losses over pairs.
export * as codes from './codes.js';
export { parseLayout, quantize, pack, unpack, codeDistance, codeDistances, maxDistance, dimensionsInUse, PAPER_LAYOUTS } from './codes.js';
export type { CodeLayout, LayoutLike, CodeMetric } from './codes.js';
// Exhaustive k-nearest and range search over a database of codes (native, exact).
export { knnScan, knnScanAsync, rangeScan, rangeScanAsync } from './scan.js';
export type { ScanMetric, ScanOptions, KnnScanResult, RangeScanResult } from './scan.js';
export { BinIndex, BIN_INDEX_FORMAT_VERSION } from './bin-index.js';
export type { BinStrategy, BinSearchOptions, BinSearchResult, BinSearchStats, BinBatchResult, BinSearchPlan } from './bin-index.js';
// Attributes by look-up table over bins (counts per occupied bin), a logistic-regression baseline, the LFW gender experiment.
export { LutClassifier, LUT_FORMAT_VERSION } from './lut-classifier.js';
export type { LutClassifierOptions, LutPredictOptions, LutPrediction, LutWeighting } from './lut-classifier.js';
export { fitLogisticRegression, logisticProbabilities, logisticPredict } from './logistic.js';
export type { LogisticOptions, LogisticModel } from './logistic.js';
export { chooseMinSamples, genderExperiment, genderMarkdown, genderSvg, writeGenderReport, lfwGenderAttributes, lfwGenderList, GENDER_CLASSES } from './gender.js';
export type { GenderExperimentOptions, GenderReport, GenderResult, GenderEvent, GenderSetSummary, TrainSizePoint, MinSamplesPoint } from './gender.js';
export * as losses from './losses.js';
export { hammingDpLoss, pairL1Loss, softplus, softplusDerivative, pairLossAt, MAX_DP_BITS } from './losses.js';
export type {
  PairBatchOptions,
  HammingDpLossOptions,
  PairL1LossOptions,
  PairLossResult,
  HammingDpLossResult,
  PairL1LossResult,
} from './losses.js';

// Training, encoding and the model file.
export { train, trainSync, encode, encodeSync, calibrateOutputLayer } from './train.js';
export type { TrainOptions, TrainProgress, TrainData, EncodeInput, CollapseRestart } from './train.js';
export type { DeviceOption } from './cuda-train.js';
export { Model, loadModel, loadModelSync, MODEL_FORMAT_VERSION } from './model.js';
export type { TrainMethod, Preprocessing, ModelInfo } from './model.js';
export { syntheticFaces } from './synthetic.js';
export type { SyntheticFaceOptions, SyntheticFaces } from './synthetic.js';

// Images and data sets: decoding (sharp, PGM), preprocessing, augmentation, the data-set cache.
export {
  loadImages,
  loadDataset,
  decodeImage,
  decodePgm,
  augmentBatch,
  scanFolderDataset,
  readListFile,
  resolvePreprocessing,
  imageShape,
  normalizeInPlace,
  defaultCacheDir,
  DEFAULT_PREPROCESSING,
  LFW_PREPROCESSING,
} from './images.js';
export type {
  ImagePreprocessing,
  PreprocessingOptions,
  ColorMode,
  CropBox,
  ImageBatch,
  LoadImagesOptions,
  LoadProgress,
  LoadDatasetOptions,
  LoadedDataset,
  DatasetList,
  SkippedImage,
  AugmentOptions,
  DecodedImage,
  GrayImage,
} from './images.js';

// LFW protocol files and splits; verification metrics, the PCA baseline and SVG charts.
export {
  readLfwPairs,
  readLfwDevPairs,
  readLfwPeople,
  readLfwDevPeople,
  readLfwNames,
  readLfwGender,
  lfwImageFile,
  lfwImagePath,
  findLfw,
  lfwView2Split,
  lfwView1Split,
  describeLfwSplit,
  LFW_IMAGE_FOLDERS,
} from './lfw.js';
export type {
  LfwPair,
  LfwPairsView1,
  LfwPairsView2,
  LfwPerson,
  LfwPeopleView2,
  LfwPeopleList,
  LfwGender,
  LfwGenderLabel,
  LfwLocation,
  LfwImageSet,
  LfwTrainSet,
  LfwPairSet,
  LfwSplit,
} from './lfw.js';
export {
  verificationAccuracy,
  bestThreshold,
  tenFoldAccuracy,
  foldedAccuracy,
  foldedCorrect,
  verificationCorrect,
  pairedComparison,
  mcNemarPValue,
  rocCurve,
  equalErrorRate,
  symmetricEigen,
  fitPca,
  pcaProject,
  pairDistances,
  lineChartSvg,
} from './eval.js';
export type {
  PairedComparison,
  ThresholdResult,
  FoldResult,
  TenFoldResult,
  RocCurve,
  PcaMethod,
  PcaModel,
  PcaOptions,
  FeatureMetric,
  ChartSeries,
  LineChartOptions,
} from './eval.js';
