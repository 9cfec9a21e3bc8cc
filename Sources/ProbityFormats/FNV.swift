// A stable 64-bit string hash, the same in every process and on every machine (Swift's `Hasher` is
// seeded per process): the corpus's held-out split and the labels index use it.

/// 64-bit FNV-1a of a string's UTF-8 bytes.
public func fnv1a64(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}
