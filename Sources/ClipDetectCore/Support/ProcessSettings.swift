import CBLAS

/// The one process-wide setting the library makes, kept here so it is never a surprise.
package enum ProcessSettings {
    /// OpenBLAS runs single-threaded: the encoder splits each GEMM over the cores itself, and an idle
    /// OpenBLAS pool would spin against that work (it cost a third of the throughput). Building an
    /// `ImageEncoder` calls this; a host program that calls OpenBLAS itself then gets one thread too.
    package static func useSingleThreadedBLAS() { _ = singleThreadedBLAS }

    private static let singleThreadedBLAS: Void = openblas_set_num_threads(1)
}
