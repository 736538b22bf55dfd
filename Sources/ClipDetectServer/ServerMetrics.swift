import ClipDetect
import Prometheus

/// What /metrics reports, in Prometheus text: requests by route and status, latency, batch sizes,
/// queue depth, images scored and failures by kind.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let queueDepth: Gauge
    let batchSize: ValueHistogram
    let imagesScored: Counter
    let imagesDropped: Counter
    let openConnections: Gauge

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "clipdetect", metricName: metric, unitName: unit, helpText: help)
    }

    init() {
        queueDepth = registry.makeGauge(descriptor: Self.name("queue_depth", "", "Images waiting for the encoder"))
        batchSize = registry.makeValueHistogram(descriptor: Self.name("batch_size", "", "Images per forward pass"), buckets: [1, 2, 4, 8, 16, 32])
        imagesScored = registry.makeCounter(descriptor: Self.name("images_scored", "total", "Images given a verdict"))
        imagesDropped = registry.makeCounter(descriptor: Self.name("images_dropped", "total",
                                                                   "Images neither decoded nor scored: their request expired or its client left"))
        openConnections = registry.makeGauge(descriptor: Self.name("open_connections", "", "Connections open now"))
    }

    /// The limits the service runs with, so a dashboard can set them beside what is used.
    func limits(_ configuration: ServerConfiguration) {
        let connections = configuration.connections
        for (metric, unit, help, value) in [
            ("max_connections", "", "Most connections open at once (beyond it they wait to be accepted)", Double(connections.maxConnections)),
            ("header_timeout", "seconds", "Time a request head may take from its first byte", connections.headerTimeout.seconds),
            ("idle_timeout", "seconds", "Time a kept-alive connection may wait for its next request", connections.idleTimeout.seconds),
            ("body_timeout", "seconds", "Time a request body may take to arrive", configuration.bodyTimeout.seconds),
            ("max_queue", "", "Most images waiting for the encoder", Double(configuration.maxQueuedImages)),
        ] {
            registry.makeGauge(descriptor: Self.name(metric, unit, help)).set(value)
        }
    }

    func timedOut(phase: String) {
        registry.makeCounter(descriptor: Self.name("connections_timed_out", "total", "Connections closed by the header or idle timeout"),
                             labels: [("phase", phase)]).increment()
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
