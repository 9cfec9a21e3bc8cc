// Process-wide serial numbers (the atomic counter is in CKernels/pool.c).
import CKernels

/// Numbers that are never handed out twice in a process.
public enum SerialNumber {
    /// A number greater than every earlier one returned (1, 2, 3, ...); thread-safe.
    public static func next() -> UInt64 { UInt64(pk_next_serial()) }
}
