import Dispatch
import Foundation

/// Work split over the cores: one contiguous range per core, so no two threads touch the same items.
package enum Parallel {
    package static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Splits rows over the cores; the body handles one row.
    package static func rows(_ rows: Int, _ body: (Int) -> Void) {
        chunks(rows) { _, range in for row in range { body(row) } }
    }

    /// Splits `count` items into one contiguous range per core; the body also gets the chunk's index,
    /// so it can use scratch memory of its own.
    package static func chunks(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
        let chunks = min(cores, count)
        if chunks <= 1 {
            body(0, 0..<count)
            return
        }
        // Ranges are disjoint, so sharing the body across threads is safe.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                shared.value(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }
}

/// A value handed to the workers of `Parallel`, which touch disjoint parts of it.
package struct UncheckedSendable<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}
