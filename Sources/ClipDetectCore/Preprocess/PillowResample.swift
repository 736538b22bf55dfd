import Foundation

/// Pillow's resampling (libImaging/Resample.c), bit for bit: separable, horizontal pass first into
/// an 8-bit intermediate, weights in 22-bit fixed point, antialiased when shrinking.
public enum PillowResample {
    static let precisionBits = 32 - 8 - 2

    /// Pillow's filters, with their supports.
    public enum Filter: String, Sendable, CaseIterable {
        case bilinear, bicubic, lanczos

        var support: Double {
            switch self {
            case .bilinear: 1
            case .bicubic: 2
            case .lanczos: 3
            }
        }

        func callAsFunction(_ value: Double) -> Double {
            switch self {
            case .bilinear:
                let x = abs(value)
                return x < 1 ? 1 - x : 0
            case .bicubic:
                // a = -0.5
                let a = -0.5, x = abs(value)
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            case .lanczos:
                func sinc(_ x: Double) -> Double { x == 0 ? 1 : sin(x * .pi) / (x * .pi) }
                return -3 <= value && value < 3 ? sinc(value) * sinc(value / 3) : 0
            }
        }
    }

    /// For each output pixel in `range`: the first input index, how many inputs, their fixed-point weights.
    struct Coefficients {
        let size: Int
        let range: Range<Int>
        var first: [Int]
        var count: [Int]
        var weights: [Int32]

        /// The input indices the outputs in `outputs` read.
        func inputs(for outputs: Range<Int>) -> Range<Int> {
            guard let low = outputs.first, let high = outputs.last else { return 0..<0 }
            return first[low - range.lowerBound]..<(first[high - range.lowerBound] + count[high - range.lowerBound])
        }
    }

    /// Pillow's precompute_coeffs + normalize_coeffs_8bpc, for the outputs in `range` only.
    static func coefficients(input: Int, output: Int, range: Range<Int>, filter: Filter = .bicubic) -> Coefficients {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let size = Int(support.rounded(.up)) * 2 + 1
        var result = Coefficients(size: size, range: range, first: [], count: [], weights: Array(repeating: 0, count: range.count * size))
        let inverseScale = 1 / filterScale
        var k = [Double](repeating: 0, count: size)
        for xx in range {
            let center = (Double(xx) + 0.5) * scale
            // C's (int) cast truncates toward zero.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = max(min(Int(center + support + 0.5), input) - xmin, 0)
            var total = 0.0
            for x in 0..<xmax {
                let w = filter((Double(x + xmin) - center + 0.5) * inverseScale)
                k[x] = w
                total += w
            }
            let row = (xx - range.lowerBound) * size
            for x in 0..<xmax {
                let fixed = (total != 0 ? k[x] / total : k[x]) * Double(1 << precisionBits)
                result.weights[row + x] = Int32(fixed < 0 ? (-0.5 + fixed).rounded(.towardZero) : (0.5 + fixed).rounded(.towardZero))
            }
            result.first.append(xmin)
            result.count.append(xmax)
        }
        return result
    }

    @inline(__always)
    static func clip8(_ value: Int32) -> UInt8 {
        let shifted = value >> Int32(precisionBits)
        return shifted < 0 ? 0 : shifted > 255 ? 255 : UInt8(shifted)
    }

    /// The window `columns`×`rows` of the image resized to `width`×`height`, with exactly the values
    /// Pillow computes for those pixels; a pass whose size does not change is skipped, as in Pillow.
    /// Only the window is computed, so a centre crop costs what the crop costs, whatever the aspect ratio.
    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter = .bicubic,
                              columns: Range<Int>? = nil, rows: Range<Int>? = nil) -> RGBImage {
        let columns = columns ?? 0..<width, rows = rows ?? 0..<height
        let vertical = height != image.height ? coefficients(input: image.height, output: height, range: rows, filter: filter) : nil
        let inputRows = vertical?.inputs(for: rows) ?? rows
        var current: RGBImage
        if width != image.width {
            current = horizontalPass(image, rows: inputRows,
                                     coefficients: coefficients(input: image.width, output: width, range: columns, filter: filter))
        } else {
            current = window(image, columns: columns, rows: inputRows)
        }
        if let vertical {
            current = verticalPass(current, rowShift: inputRows.lowerBound, coefficients: vertical)
        }
        return current
    }

    /// The pixels in `columns` × `rows`, copied without resampling (Pillow's `crop` inside the image).
    package static func window(_ image: RGBImage, columns: Range<Int>, rows: Range<Int>) -> RGBImage {
        if columns == 0..<image.width, rows == 0..<image.height { return image }
        var pixels = [UInt8]()
        pixels.reserveCapacity(columns.count * rows.count * 3)
        for y in rows { pixels += image.pixels[((y * image.width + columns.lowerBound) * 3)..<((y * image.width + columns.upperBound) * 3)] }
        return RGBImage(width: columns.count, height: rows.count, pixels: pixels)
    }

    private static func horizontalPass(_ image: RGBImage, rows: Range<Int>, coefficients c: Coefficients) -> RGBImage {
        let width = c.range.count
        var out = [UInt8](repeating: 0, count: rows.count * width * 3)
        let half = Int32(1 << (precisionBits - 1))
        image.pixels.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                c.weights.withUnsafeBufferPointer { weights in
                    let source = UncheckedSendable(input), target = UncheckedSendable(output), k = UncheckedSendable(weights)
                    Parallel.rows(rows.count) { index in
                        let row = source.value.baseAddress! + (rows.lowerBound + index) * image.width * 3
                        let line = target.value.baseAddress! + index * width * 3
                        for xx in 0..<width {
                            var s0 = half, s1 = half, s2 = half
                            let first = c.first[xx], w = k.value.baseAddress! + xx * c.size
                            for x in 0..<c.count[xx] {
                                let p = row + (first + x) * 3, weight = w[x]
                                s0 &+= Int32(p[0]) &* weight
                                s1 &+= Int32(p[1]) &* weight
                                s2 &+= Int32(p[2]) &* weight
                            }
                            line[xx * 3] = clip8(s0)
                            line[xx * 3 + 1] = clip8(s1)
                            line[xx * 3 + 2] = clip8(s2)
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: rows.count, pixels: out)
    }

    private static func verticalPass(_ image: RGBImage, rowShift: Int, coefficients c: Coefficients) -> RGBImage {
        let height = c.range.count
        let stride = image.width * 3
        var out = [UInt8](repeating: 0, count: height * stride)
        let half = Int32(1 << (precisionBits - 1))
        image.pixels.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                c.weights.withUnsafeBufferPointer { weights in
                    let source = UncheckedSendable(input), target = UncheckedSendable(output), k = UncheckedSendable(weights)
                    // Row by row, so every read is sequential; sums are the same as Pillow's column loop.
                    Parallel.chunks(height) { _, rows in
                        var sums = [Int32](repeating: 0, count: stride)
                        for yy in rows {
                            let first = c.first[yy] - rowShift, w = k.value.baseAddress! + yy * c.size
                            let line = target.value.baseAddress! + yy * stride
                            for i in 0..<stride { sums[i] = half }
                            for y in 0..<c.count[yy] {
                                let row = source.value.baseAddress! + (first + y) * stride, weight = w[y]
                                for i in 0..<stride { sums[i] &+= Int32(row[i]) &* weight }
                            }
                            for i in 0..<stride { line[i] = clip8(sums[i]) }
                        }
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: height, pixels: out)
    }
}
