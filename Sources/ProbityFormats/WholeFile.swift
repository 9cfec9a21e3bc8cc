// Files Probity reads whole into memory (JSON documents, JSON Lines, corpora, text), read with a
// cap on their size checked before and during the read: a hostile or mistaken path (a 2 GB file, a
// device such as /dev/zero, a pipe that never ends) is refused with a message instead of filling
// memory. Model weights and SAE tensors are mapped, not read, and bounded by their own readers.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most bytes each kind of file read whole may hold (docs/FUZZING.md, "Bounds"). Each is far
/// above what real files hold and keeps what decoding them costs to a stated multiple of the cap.
public enum FileSizeLimits {
    /// pack.json, SAELens cfg.json, chat message files, training checkpoint state: real ones are
    /// a few KB (a pack recording derivation items, tens of KB). Their values are capped too
    /// (`StrictJSON.maxSmallDocumentValues`).
    public static let smallJSON = 16 << 20
    /// A pack's labels file: the default 8192-latent pack's is 10.9 MB (5 contexts of 13 tokens
    /// per latent); a 131,072-latent SAE's would be about 175 MB.
    public static let labels = 512 << 20
    /// An audit report or audit log: the default audit's report is 3.5 MB for 15 cases.
    public static let report = 512 << 20
    /// JSON Lines and text data read whole: eval data, prompt sets, suite datasets, text to tokenize.
    public static let textData = 256 << 20
    /// A training or statistics corpus: the ShareGPT file used here is 126 MB.
    public static let corpus = 1 << 30
}

public enum WholeFile {
    /// The bytes of the file at `path`, or nil if it cannot be opened or read (missing, a
    /// directory, no permission): callers say which. Throws `FormatError.fileTooLarge` as soon as
    /// the file is known to hold more than `limit` bytes (its size when it is a regular file,
    /// else what a read has returned so far), before reading more than `limit + 1` bytes.
    public static func contents(_ path: String, what: String, limit: Int) throws -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFDIR { return nil }
        if (info.st_mode & S_IFMT) == S_IFREG, Int64(info.st_size) > Int64(limit) {
            throw FormatError.fileTooLarge(path: path, what: what, size: Int64(info.st_size), limit: limit)
        }
        let expected = (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : 0
        var data = Data(capacity: min(expected, limit) + 1)
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min(chunk, limit + 1 - data.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
            if data.count > limit {
                throw FormatError.fileTooLarge(path: path, what: what, size: nil, limit: limit)
            }
        }
        return data
    }
}
