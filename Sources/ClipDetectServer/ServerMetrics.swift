import ClipDetect
import Prometheus

/// What /metrics reports, in Prometheus text: requests by route and status, latency, batch sizes,
/// queue depth, images scored and failures by kind.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let queueDepth: Gauge
    let batchSize: ValueHistogram
    let imagesScored: Counter

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "clipdetect", metricName: metric, unitName: unit, helpText: help)
    }

    init() {
        queueDepth = registry.makeGauge(descriptor: Self.name("queue_depth", "", "Images waiting for the encoder"))
        batchSize = registry.makeValueHistogram(descriptor: Self.name("batch_size", "", "Images per forward pass"), buckets: [1, 2, 4, 8, 16, 32])
        imagesScored = registry.makeCounter(descriptor: Self.name("images_scored", "total", "Images given a verdict"))
    }

    func record(_ result: Result<Detection, Error>) {
        switch result {
        case .success: imagesScored.increment()
        case .failure(let error):
            registry.makeCounter(descriptor: Self.name("image_errors", "total", "Images that could not be scored, by kind"),
                                 labels: [("kind", FailureKind(of: error).rawValue)]).increment()
        }
    }

    func request(route: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: Self.name("http_requests", "total", "HTTP requests by route and status"),
                             labels: [("route", route), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.name("http_request_duration", "seconds", "HTTP request latency by route"),
                                       labels: [("route", route)],
                                       buckets: [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                                 .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)])
            .record(duration)
    }

    var text: String { registry.emitToString() }
}
