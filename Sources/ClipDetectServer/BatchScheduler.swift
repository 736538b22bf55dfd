import ClipDetect
import Foundation
import ServiceLifecycle

/// Images from concurrent requests share forward passes: the first waiting image waits up to
/// `maxWait` for others, then up to `maxBatch` go through the one encoder together. The queue is
/// bounded, in images and by the deadline at the measured pace (`Admission`): a request it cannot
/// take is refused at once. One pass at a time keeps the
/// encoder's two workers the only ones on the cores.
actor BatchScheduler: Service {
    enum Refusal: Error { case shuttingDown }
    struct DeadlineExceeded: Error {}

    /// One request's images: its verdicts fill in as passes finish; resumed once, when all are in
    /// or when the request expires.
    private final class Pending {
        var results: [Result<Detection, Error>?]
        var remaining: Int
        let continuation: CheckedContinuation<[Result<Detection, Error>], Never>
        var finished = false
        /// Set when the request expired or its client left: its images still in a pass are skipped.
        let abandoned = Flag()

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
    private let metrics: ServerMetrics
    private var admission: Admission
    /// Images in the pass now running.
    private var inPass = 0
    private var queue: [Item] = []
    private var open: [Int: Pending] = [:]
    private var nextRequest = 0
    private var wakeUp: CheckedContinuation<Void, Never>?
    private var accepting = true

    init(detector: Detector, maxBatch: Int, maxWait: Duration, maxQueued: Int, deadline: Duration, metrics: ServerMetrics) {
        self.detector = detector
        admission = Admission(maxQueued: maxQueued, deadline: deadline)
        self.maxBatch = maxBatch
        self.maxWait = maxWait
        self.metrics = metrics
    }

    /// A ticket for one request, so it can be expired while it waits.
    func ticket() -> Int {
        defer { nextRequest += 1 }
        return nextRequest
    }

    /// Why `count` more images cannot be queued now, or nil when they can. Checked before a body
    /// is read too, so an overloaded server refuses at once instead of holding bodies it will refuse.
    func refusal(adding count: Int) -> Full? {
        admission.refusal(queued: queue.count, inPass: inPass, adding: count)
    }

    /// Queues all of a request's images or none, and returns their verdicts in order.
    func detect(_ sources: [ImageSource], ticket: Int) async throws -> [Result<Detection, Error>] {
        guard accepting else { throw Refusal.shuttingDown }
        if let full = refusal(adding: sources.count) { throw full }
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
        pending.abandoned.set()
        let queued = queue.count
        queue.removeAll { $0.request == ticket }
        metrics.imagesDropped.increment(by: Int64(queued - queue.count))
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
            guard !batch.isEmpty else { continue }  // expired while the first waited for company
            queue.removeFirst(batch.count)
            metrics.queueDepth.set(Double(queue.count))
            metrics.batchSize.record(Double(batch.count))
            inPass = batch.count
            let start = ContinuousClock.now
            // An image whose request expires (or whose client leaves) during the pass is not
            // decoded or encoded when its turn comes.
            let abandoned = batch.map(\.pending.abandoned)
            let results = await detector.detect(batch.map(\.source)) { !abandoned[$0].isSet }
            let skipped = results.filter { if case .failure(let error) = $0 { error is CancellationError } else { false } }.count
            // The pace is what scored images cost: skipped ones would make it look faster than it is.
            if skipped < batch.count { admission.record(ContinuousClock.now - start, images: batch.count - skipped) }
            inPass = 0
            for (item, result) in zip(batch, results) {
                if case .failure(let error) = result, error is CancellationError { metrics.imagesDropped.increment(); continue }
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

/// The queue cannot take the images: it is full, or they would not be done within the deadline at
/// the measured pace. `retryAfter` is in whole seconds.
struct Full: Error, Equatable {
    enum Reason: Equatable {
        /// `adding` more would pass `maxQueued`.
        case queueLimit(adding: Int)
        /// At the measured pace they would be done only after the deadline.
        case deadline
    }
    let queued: Int
    let retryAfter: Int
    let reason: Reason
}

/// Whether images may join the queue: no more than `maxQueued` wait, and none that at the pace of
/// recent passes would be done only after the deadline (it would expire after taking a place, and
/// the work spent on it would be lost: under overload that is what lowers throughput).
struct Admission {
    let maxQueued: Int
    let deadline: Duration
    /// Seconds per image over recent passes (an exponential average), nil before the first.
    private(set) var secondsPerImage: Double?

    init(maxQueued: Int, deadline: Duration) {
        self.maxQueued = maxQueued
        self.deadline = deadline
    }

    mutating func record(_ elapsed: Duration, images: Int) {
        guard images > 0 else { return }
        let pace = elapsed.seconds / Double(images)
        secondsPerImage = secondsPerImage.map { 0.7 * $0 + 0.3 * pace } ?? pace
    }

    /// `queued` images wait and `inPass` are being encoded; may `count` more join them? With nothing
    /// ahead they always may (within `maxQueued`): the pace of an earlier, slower pass must not lock
    /// the queue, and only a pass can measure it again.
    func refusal(queued: Int, inPass: Int, adding count: Int) -> Full? {
        let ahead = queued + inPass
        // Seconds until the images ahead are done at the measured pace (1 before any pass), 1…60.
        let retryAfter = min(60, max(1, Int((Double(ahead) * (secondsPerImage ?? 0)).rounded(.up))))
        if queued + count > maxQueued { return Full(queued: queued, retryAfter: retryAfter, reason: .queueLimit(adding: count)) }
        guard ahead > 0, let secondsPerImage, Double(ahead + count) * secondsPerImage > deadline.seconds else { return nil }
        return Full(queued: queued, retryAfter: retryAfter, reason: .deadline)
    }
}
