import ClipDetect
import Foundation
import ServiceLifecycle

/// Images from concurrent requests share forward passes: the first waiting image waits up to
/// `maxWait` for others, then up to `maxBatch` go through the one encoder together. The queue is
/// bounded: a request that would overfill it is refused at once. One pass at a time keeps the
/// encoder's two workers the only ones on the cores.
actor BatchScheduler: Service {
    enum Refusal: Error { case queueFull(queued: Int), shuttingDown }
    struct DeadlineExceeded: Error {}

    /// One request's images: its verdicts fill in as passes finish; resumed once, when all are in
    /// or when the request expires.
    private final class Pending {
        var results: [Result<Detection, Error>?]
        var remaining: Int
        let continuation: CheckedContinuation<[Result<Detection, Error>], Never>
        var finished = false

        init(count: Int, continuation: CheckedContinuation<[Result<Detection, Error>], Never>) {
            results = Array(repeating: nil, count: count)
            remaining = count
            self.continuation = continuation
        }

        func finish() {
            guard !finished else { return }
            finished = true
            continuation.resume(returning: results.map { $0 ?? .failure(DeadlineExceeded()) })
        }
    }

    private struct Item {
        let request: Int
        let pending: Pending
        let index: Int
        let source: ImageSource
    }

    private let detector: Detector
    private let maxBatch: Int
    private let maxWait: Duration
    private let maxQueued: Int
    private let metrics: ServerMetrics
    private var queue: [Item] = []
    private var open: [Int: Pending] = [:]
    private var nextRequest = 0
    private var wakeUp: CheckedContinuation<Void, Never>?
    private var accepting = true

    init(detector: Detector, maxBatch: Int, maxWait: Duration, maxQueued: Int, metrics: ServerMetrics) {
        self.detector = detector
        self.maxBatch = maxBatch
        self.maxWait = maxWait
        self.maxQueued = maxQueued
        self.metrics = metrics
    }

    /// A ticket for one request, so it can be expired while it waits.
    func ticket() -> Int {
        defer { nextRequest += 1 }
        return nextRequest
    }

    /// Whether one more image would fit now: checked before a body is read, so an overloaded
    /// server refuses at once instead of holding bodies it will refuse.
    var isFull: Bool { !accepting || queue.count >= maxQueued }

    /// Queues all of a request's images or none, and returns their verdicts in order.
    func detect(_ sources: [ImageSource], ticket: Int) async throws -> [Result<Detection, Error>] {
        guard accepting else { throw Refusal.shuttingDown }
        guard queue.count + sources.count <= maxQueued else { throw Refusal.queueFull(queued: queue.count) }
        guard !sources.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let pending = Pending(count: sources.count, continuation: continuation)
            open[ticket] = pending
            for (index, source) in sources.enumerated() { queue.append(Item(request: ticket, pending: pending, index: index, source: source)) }
            metrics.queueDepth.set(Double(queue.count))
            wakeUp?.resume()
            wakeUp = nil
        }
    }

    /// Drops a request's images that have not been encoded yet; its verdicts so far are returned
    /// with the rest marked as past the deadline.
    func expire(_ ticket: Int) {
        guard let pending = open.removeValue(forKey: ticket) else { return }
        queue.removeAll { $0.request == ticket }
        metrics.queueDepth.set(Double(queue.count))
        pending.finish()
    }

    /// The worker: runs until a graceful shutdown, then finishes what is queued. Cancelled, it
    /// answers whatever is still queued with an error instead of leaving its requests waiting.
    func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await self.work()
            } onGracefulShutdown: {
                Task { await self.stopAccepting() }
            }
        } onCancel: {
            Task { await self.stopAccepting() }
        }
        for pending in open.values {
            for index in pending.results.indices {
                if case .none = pending.results[index] { pending.results[index] = .failure(Refusal.shuttingDown) }
            }
            pending.finish()
        }
        open = [:]
        queue = []
    }

    private func stopAccepting() {
        accepting = false
        wakeUp?.resume()
        wakeUp = nil
    }

    private func work() async {
        while true {
            if Task.isCancelled { return }
            if queue.isEmpty {
                if !accepting { return }
                await withCheckedContinuation { wakeUp = $0 }
                continue
            }
            if queue.count < maxBatch && accepting { try? await Task.sleep(for: maxWait) }
            let batch = Array(queue.prefix(maxBatch))
            queue.removeFirst(batch.count)
            metrics.queueDepth.set(Double(queue.count))
            metrics.batchSize.record(Double(batch.count))
            let results = await detector.detect(batch.map(\.source))
            for (item, result) in zip(batch, results) {
                metrics.record(result)
                guard !item.pending.finished else { continue }
                item.pending.results[item.index] = result
                item.pending.remaining -= 1
                if item.pending.remaining == 0 {
                    open[item.request] = nil
                    item.pending.finish()
                }
            }
        }
    }
}
