// The library as one import: the pipeline's layers, each its own target so that none can reach
// the one above it (image → decode → preprocess → encoder → features → head → score → tools).
@_exported import ClipDetectCore
@_exported import ClipDetectDetection
@_exported import ClipDetectEncoder
@_exported import ClipDetectTools
