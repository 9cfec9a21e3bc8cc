// libFuzzer entry point: FuzzTarget.tokenizerSPM (see Sources/ProbityFuzzing).
import FuzzMain
import ProbityFuzzing

let context = Result { try FuzzDriver.context() }

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.testOneInput(.tokenizerSPM, context, data, size)
}

// SwiftPM links an executable with `main` aliased to `<module>_main`; this is that function, and
// it hands over to libFuzzer's driver (the arguments are libFuzzer's: corpus dirs, -flags).
@_cdecl("fuzz_tokenizer_spm_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.warmUp(.tokenizerSPM, context)
    return FuzzMain.runLibFuzzer(argc, argv, testOneInput)
}
