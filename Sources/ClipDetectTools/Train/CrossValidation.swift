import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Stratified k-fold splits: each class shuffled with a fixed seed and dealt round-robin.
package enum CrossValidation {
    package static func stratifiedFolds(labels: [Bool], folds k: Int, seed: UInt64 = 0) -> [[Int]] {
        var generator = SeededGenerator(seed: seed)
        var folds = Array(repeating: [Int](), count: k)
        var next = 0
        for label in [false, true] {
            var members = labels.indices.filter { labels[$0] == label }
            members.shuffle(using: &generator)
            for index in members {
                folds[next % k].append(index)
                next += 1
            }
        }
        return folds.map { $0.sorted() }
    }

    /// Out-of-fold decision values for every sample, one array per setting. The fits (one per setting
    /// and fold) share the cores and give the same values as one after another.
    package static func predictions(_ data: TrainingSet, folds: [[Int]], settings: [Double],
                                   fit: @escaping @Sendable (Double, TrainingSet) -> LinearClassifier.Model) -> [[Double]] {
        let jobs = settings.count * folds.count
        var models = [LinearClassifier.Model?](repeating: nil, count: jobs)
        models.withUnsafeMutableBufferPointer { buffer in
            let shared = UncheckedSendable(buffer)
            DispatchQueue.concurrentPerform(iterations: jobs) { job in
                let (setting, fold) = job.quotientAndRemainder(dividingBy: folds.count)
                guard !folds[fold].isEmpty else { return }
                let held = Set(folds[fold])
                shared.value[job] = fit(settings[setting], data.subset(data.labels.indices.filter { !held.contains($0) }))
            }
        }
        return settings.indices.map { setting in
            var out = [Double](repeating: .nan, count: data.labels.count)
            for (f, fold) in folds.enumerated() {
                guard let model = models[setting * folds.count + f] else { continue }
                for i in fold { out[i] = model.decision(data.features[i]) }
            }
            return out
        }
    }
}
