// The instruction set level the kernels run at: the best this CPU has, unless a benchmark caps it
// to stand in for a CPU without the higher levels.
import CKernels

public enum KernelLevel: String, Sendable, CaseIterable {
    case generic, avx2, avx512

    init(_ level: Int32) {
        switch level {
        case Int32(PK_ISA_AVX512): self = .avx512
        case Int32(PK_ISA_AVX2): self = .avx2
        default: self = .generic
        }
    }

    var value: Int32 {
        switch self {
        case .generic: return Int32(PK_ISA_GENERIC)
        case .avx2: return Int32(PK_ISA_AVX2)
        case .avx512: return Int32(PK_ISA_AVX512)
        }
    }

    /// The level the kernels run at now.
    public static var current: KernelLevel { KernelLevel(pk_best_isa()) }

    /// The level the 8-bit activation products run at (AVX-512 needs VNNI besides).
    public static var q8: KernelLevel { KernelLevel(pk_q8_level(pk_best_isa())) }

    /// Caps the level for the rest of the process. Call it before any model loads or kernel runs:
    /// levels already read stay as they were.
    public static func limit(to level: KernelLevel) { pk_limit_isa(level.value) }
}
