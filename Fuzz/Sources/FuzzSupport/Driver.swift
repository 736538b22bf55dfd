import Foundation

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                                 _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                                 _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

nonisolated(unsafe) private var input: ((Data) -> Void)?

/// Hands the process to libFuzzer's driver (SwiftPM gives executables an entry point of their own,
/// so libFuzzer's `main` cannot be used) and calls `body` with each input.
public func runFuzzer(_ body: @escaping (Data) -> Void) -> Never {
    input = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        input?(data.map { Data(bytes: $0, count: size) } ?? Data())
        return 0
    })
}
