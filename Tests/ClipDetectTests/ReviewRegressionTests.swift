import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// What a hostile review found after the first round of fixes, kept as regressions.
@Suite struct ReviewRegressionTests {


    /// A zip holding one data.pkl.
    static func pickle(_ bytes: [UInt8]) -> Data {
        var out = Data(), central = Data()
        let name = Array("a/data.pkl".utf8)
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        out += [0x50, 0x4B, 0x03, 0x04] + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))
            + le(UInt32(bytes.count)) + le(UInt32(bytes.count)) + le(UInt16(name.count)) + le(UInt16(0)) + name + bytes
        central += [0x50, 0x4B, 0x01, 0x02] + le(UInt16(20)) + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))
            + le(UInt32(bytes.count)) + le(UInt32(bytes.count)) + le(UInt16(name.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
            + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0)) + name
        let offset = out.count
        out += central
        out += [0x50, 0x4B, 0x05, 0x06] + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(1)) + le(UInt16(1)) + le(UInt32(central.count)) + le(UInt32(offset)) + le(UInt16(0))
        return out
    }

    @Test func deepPicklesAndRepeatingViewsAreRefused() throws {
        let deep = Array("\u{80}\u{02}}X\u{01}\u{00}\u{00}\u{00}xK\u{00}".unicodeScalars.map { UInt8($0.value) }) + Array(repeating: 0x85, count: 100_000) + Array("s.".utf8)
        let error = #expect(throws: CheckpointError.self) { try Checkpoint.read(Self.pickle(deep)) }
        #expect("\(error!)".contains("nests deeper"), "\(error!)")
        let dups = [0x80, 0x02, 0x4E] + Array(repeating: UInt8(ascii: "2"), count: 2_000_000) + [UInt8(ascii: ".")]
        #expect(throws: CheckpointError.self) { try Checkpoint.read(Self.pickle(dups)) }
    }

    @Test func aGIFFrameOfZeroSizeIsAnErrorNotACrash() throws {
        var gif = Array("GIF89a".utf8) + [10, 0, 10, 0, 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]
        gif += [UInt8(ascii: ","), 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0x44, 1, 0, UInt8(ascii: ";")]
        #expect(throws: ImageError.self) { try ImageDecoder.decode(Data(gif)) }
    }


}
