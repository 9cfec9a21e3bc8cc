// libFuzzer's driver, for the entry points' `main`. Here, not in ProbityFuzzing, because only
// binaries linked with -sanitize=fuzzer have the symbol (the replay test links ProbityFuzzing).

/// libFuzzer's driver, present in binaries linked with `-sanitize=fuzzer` (LLVM 11 and later).
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

public enum FuzzMain {
    /// Runs libFuzzer's driver with the process's arguments and `callback` as the target.
    /// Only callable from a binary linked with libFuzzer.
    public static func runLibFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, callback)
    }
}
