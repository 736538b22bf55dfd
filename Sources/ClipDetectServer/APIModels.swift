import ClipDetect
import Foundation
import HTTPTypes
import Hummingbird

/// One image's verdict, or its error: the other images of the request are not affected.
struct ImageVerdict: Encodable {
    var index: Int
    /// The form part's file name, when the image came in a form.
    var name: String?
    /// P(synthetic): the field hosted detectors call `ai_generated`.
    var ai_generated: Double?
    /// synthetic, real, or uncertain inside the band.
    var verdict: String?
    /// The two-way label (threshold, or P > 1/2), what `detect` writes as `label`.
    var label: String?
    var probability: Double?
    /// The score the verdict is read from (the fused one with several heads); a log-likelihood ratio.
    var score: Double?
    var scores: [String: Double]?
    var fused: Double?
    var width: Int?
    var height: Int?
    var error: ErrorBody?
    /// With `?stability=N`: how often the verdict held under re-sharing draws.
    var stability: StabilityCheck.Result?

    init(index: Int, name: String?, result: Result<Detection, Error>, detector: Detector, stability: StabilityCheck.Result? = nil) {
        self.index = index
        self.name = name
        self.stability = stability
        switch result {
        case .success(let detection) where detection.scores.allSatisfy(\.isFinite) && detection.score.isFinite:
            ai_generated = detection.probability
            probability = detection.probability
            verdict = detection.verdict.rawValue
            label = detection.label
            score = detection.score
            scores = Dictionary(uniqueKeysWithValues: zip(detector.heads.map(\.metadata.name), detection.scores))
            fused = detection.fused
            width = detection.imageWidth
            height = detection.imageHeight
        case .success:
            error = ErrorBody(kind: FailureKind.invalidInput.rawValue, message: "the score is not finite")
        case .failure(let failure):
            // The message names no path: uploads have none, and the service never reads one.
            let message = (failure as? ImageFileError).map { "\($0.underlying)" } ?? "\(failure)"
            error = ErrorBody(kind: FailureKind(of: failure).rawValue, message: message)
        }
    }
}

struct ErrorBody: Encodable {
    var kind: String
    var message: String
}

/// The `kind` of an error answer: a library failure (`FailureKind`) or one of the service's own
/// refusals, which say nothing about the image and so are told apart from its failures.
enum ErrorKind: Sendable, Equatable {
    case failure(FailureKind)
    /// 429: the queue is full, or what it holds would not finish within the deadline.
    case overloaded
    /// 503: the verdicts were not ready within the request's deadline.
    case deadlineExceeded
    /// 503: the server is stopping.
    case shuttingDown
    /// 401: a missing or wrong API key.
    case unauthorized
    /// 405: a known path asked with another method.
    case methodNotAllowed
    /// 408: the body did not arrive in time.
    case bodyTimeout
    /// 408: the request head did not arrive in time (written by `ByteWatch`, before any route).
    case headerTimeout
    /// 400: the request is not HTTP the parser can read (framing, Content-Length); the connection closes.
    case malformedRequest
    /// 501 for a transfer coding other than chunked, 415 for a content coding: the bytes would not be the image.
    case unsupportedEncoding

    var rawValue: String {
        switch self {
        case .failure(let kind): kind.rawValue
        case .overloaded: "overloaded"
        case .deadlineExceeded: "deadline_exceeded"
        case .shuttingDown: "shutting_down"
        case .unauthorized: "unauthorized"
        case .methodNotAllowed: "method_not_allowed"
        case .bodyTimeout: "body_timeout"
        case .headerTimeout: "header_timeout"
        case .malformedRequest: "malformed_request"
        case .unsupportedEncoding: "unsupported_encoding"
        }
    }

    /// Every value `kind` can take, for the OpenAPI document.
    static let all: [String] = FailureKind.allCases.map(\.rawValue)
        + [ErrorKind.overloaded, .deadlineExceeded, .shuttingDown, .unauthorized, .methodNotAllowed, .bodyTimeout, .headerTimeout,
           .malformedRequest, .unsupportedEncoding].map(\.rawValue)
}

struct ErrorResponse: Encodable { var error: ErrorBody }

/// A refused request as a value: its status, kind and message, and whether the connection closes
/// (a body left unread cannot be followed by another request). Helpers throw it; the route turns it
/// into the JSON answer, so middlewares see a response either way.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let kind: ErrorKind
    let message: String
    var closes = false
    var retryAfter: Int?

    init(_ status: HTTPResponse.Status, _ kind: ErrorKind, _ message: String, closes: Bool = false, retryAfter: Int? = nil) {
        (self.status, self.kind, self.message, self.closes, self.retryAfter) = (status, kind, message, closes, retryAfter)
    }

    init(_ status: HTTPResponse.Status, _ kind: FailureKind, _ message: String, closes: Bool = false) {
        self.init(status, .failure(kind), message, closes: closes)
    }

    var response: Response {
        var response = DetectionServer.error(status, kind, message)
        if closes { response.headers[.connection] = "close" }
        if let retryAfter { response.headers[.retryAfter] = "\(retryAfter)" }
        return response
    }

    func response(from request: Request, context: some RequestContext) throws -> Response { response }
}

struct DetectResponse: Encodable {
    var model: String
    var images: [ImageVerdict]
}

/// What /v1/models says: the backbones, each head with the backbone it reads and how its scores
/// read, the fusion.
struct ModelsResponse: Encodable {
    struct Backbone: Encodable {
        var model: String
        var architecture: String
        var fingerprint: String
        var name: String?
        /// What computes the features: "fp32" or "bf16", and the kernels (e.g. "bf16, oneDNN, weights packed at load (578 MB)").
        var precision: String
        var compute: String
    }

    struct HeadInfo: Encodable {
        var name: String
        var feature: String
        var width: Int
        /// How each image becomes the encoder's input for this head: resize-crop or crop.
        var view: String
        /// linear, or rine (RINE's network before its last layer).
        var network: String
        /// Index of its backbone in `backbones`.
        var backbone: Int
        var calibration: Head.Calibration?
        var threshold: Double?
        var band: UncertaintyBand?
        var calibrationSet: CalibrationSet?
        var provenance: String?
    }

    var version: String
    /// The first head's backbone (the only one in most services).
    var backbone: Backbone
    var backbones: [Backbone]
    var heads: [HeadInfo]
    var fusion: String?
    /// How the final score reads: the only head's rule, or the fused score's, with any band the server was given.
    var decision: DecisionRule

    init(_ server: DetectionServer) {
        let detector = server.detector, encoders = detector.encoders
        version = clipdetectVersion
        backbones = encoders.enumerated().map { index, encoder in
            Backbone(model: server.models[index], architecture: encoder.description.architecture, fingerprint: encoder.fingerprint,
                     name: detector.heads.indices.first { detector.encoder(ofHead: $0) === encoder }.flatMap { detector.heads[$0].metadata.feature.backbone },
                     precision: encoder.backend.precision.rawValue, compute: encoder.backend.description)
        }
        backbone = backbones[0]
        heads = detector.heads.enumerated().map { index, head in
            let f = head.metadata.feature
            return HeadInfo(name: head.metadata.name, feature: (f.normalized ? "normalised " : "raw ") + f.kind.rawValue, width: f.width,
                            view: f.inputView.rawValue, network: head.trunk == nil ? "linear" : "rine",
                            backbone: encoders.firstIndex { $0 === detector.encoder(ofHead: index) }!,
                            calibration: head.metadata.calibration, threshold: head.metadata.threshold, band: head.metadata.band,
                            calibrationSet: head.metadata.calibrationSet, provenance: head.metadata.provenance)
        }
        fusion = server.detector.heads.count > 1 ? server.detector.fusion.rawValue : nil
        decision = server.detector.decision
    }
}
