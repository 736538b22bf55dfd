import Foundation

/// The pixel operations of impairments: Gaussian noise and scipy's Gaussian blur.
enum Filters {
    /// Additive Gaussian noise on every channel value, rounded and clipped. Values come in fixed blocks,
    /// each from its own generator, so the cores share the work and every machine draws the same noise.
    static func gaussianNoise(_ image: RGBImage, sigma: Double, seed: UInt64) -> RGBImage {
        let block = 1 << 16
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { pixels in
            let target = UncheckedSendable(pixels), count = pixels.count
            Parallel.chunks((count + block - 1) / block) { _, blocks in
                for index in blocks {
                    var generator = SeededGenerator(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
                    let end = min((index + 1) * block, count)
                    var i = index * block
                    while i < end {
                        // Box–Muller: two normal draws from each pair of uniforms.
                        let u = Double((generator.next() >> 11) + 1) * 0x1p-53, v = Double(generator.next() >> 11) * 0x1p-53
                        let r = (-2 * log(u)).squareRoot() * sigma
                        target.value[i] = UInt8(min(max((Double(target.value[i]) + r * cos(2 * .pi * v)).rounded(), 0), 255))
                        if i + 1 < end {
                            target.value[i + 1] = UInt8(min(max((Double(target.value[i + 1]) + r * sin(2 * .pi * v)).rounded(), 0), 255))
                        }
                        i += 2
                    }
                }
            }
        }
        return out
    }

    /// `scipy.ndimage.gaussian_filter(channel, sigma, output=channel)` on each 8-bit channel, as the
    /// reference's augmentation calls it: radius ⌊4σ + 0.5⌋, mirrored edges, rows (axis 0) then
    /// columns, each pass summed in double as scipy's symmetric-kernel loop (centre, then the outermost
    /// pair inwards) and truncated to 8 bits, the intermediate included.
    static func gaussianBlur(_ image: RGBImage, sigma: Double) -> RGBImage {
        guard sigma > 1e-15 else { return image }
        let radius = Int(4 * sigma + 0.5)
        let weights = (-radius...radius).map { exp(-0.5 / (sigma * sigma) * Double($0 * $0)) }
        let total = numpyPairwiseSum(weights[...])
        let kernel = weights[radius...].map { $0 / total }
        func reflect(_ i: Int, _ n: Int) -> Int {
            let period = 2 * n, i = ((i % period) + period) % period
            return i < n ? i : period - 1 - i
        }
        let w = image.width, h = image.height, rowLength = w * 3
        var vertical = image, out = image
        // Down the columns: each output row is a weighted sum of whole source rows.
        image.pixels.withUnsafeBufferPointer { source in
            vertical.pixels.withUnsafeMutableBufferPointer { target in
                let input = UncheckedSendable(source.baseAddress!), output = UncheckedSendable(target.baseAddress!)
                Parallel.chunks(h) { _, rows in
                    var sum = [Double](repeating: 0, count: rowLength)
                    for y in rows {
                        filterLine(centre: input.value + y * rowLength, kernel: kernel, sum: &sum, into: output.value + y * rowLength) { j in
                            (input.value + reflect(y - j, h) * rowLength, input.value + reflect(y + j, h) * rowLength)
                        }
                    }
                }
            }
        }
        // Along the rows, from a mirrored copy of each row.
        vertical.pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { target in
                let input = UncheckedSendable(source.baseAddress!), output = UncheckedSendable(target.baseAddress!)
                Parallel.chunks(h) { _, rows in
                    var padded = [UInt8](repeating: 0, count: (w + 2 * radius) * 3)
                    var sum = [Double](repeating: 0, count: rowLength)
                    for y in rows {
                        for p in 0..<(w + 2 * radius) {
                            let x = reflect(p - radius, w)
                            for c in 0..<3 { padded[p * 3 + c] = input.value[y * rowLength + x * 3 + c] }
                        }
                        padded.withUnsafeBufferPointer { row in
                            let row = row.baseAddress!
                            filterLine(centre: row + 3 * radius, kernel: kernel, sum: &sum, into: output.value + y * rowLength) { j in
                                (row + 3 * (radius - j), row + 3 * (radius + j))
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One line of scipy's symmetric correlation: centre·k₀ + Σ over j = r…1 of (before + after)·kⱼ,
    /// in double, truncated to 8 bits; `pair(j)` gives the lines j before and j after the centre.
    private static func filterLine(centre: UnsafePointer<UInt8>, kernel: [Double], sum: inout [Double], into output: UnsafeMutablePointer<UInt8>,
                                   pair: (Int) -> (UnsafePointer<UInt8>, UnsafePointer<UInt8>)) {
        sum.withUnsafeMutableBufferPointer { sum in
            let count = sum.count
            let k0 = kernel[0]
            for i in 0..<count { sum[i] = Double(centre[i]) * k0 }
            for j in stride(from: kernel.count - 1, through: 1, by: -1) {
                let (before, after) = pair(j), k = kernel[j]
                for i in 0..<count { sum[i] += (Double(before[i]) + Double(after[i])) * k }
            }
            for i in 0..<count { output[i] = UInt8(min(max(sum[i], 0), 255)) }
        }
    }

    /// numpy's `sum` of a float64 array (pairwise, eight accumulators per block of up to 128), so the
    /// kernel is normalised to the same last bit as scipy's.
    static func numpyPairwiseSum(_ a: ArraySlice<Double>) -> Double {
        let n = a.count, base = a.startIndex
        if n < 8 { return a.reduce(-0.0, +) }
        if n > 128 {
            let half = (n / 2) - (n / 2) % 8
            return numpyPairwiseSum(a[base..<(base + half)]) + numpyPairwiseSum(a[(base + half)...])
        }
        var r = Array(a[base..<(base + 8)])
        var i = 8
        while i < n - n % 8 {
            for k in 0..<8 { r[k] += a[base + i + k] }
            i += 8
        }
        var result = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n { result += a[base + i]; i += 1 }
        return result
    }
}
