// A large file's bytes for a reader that walks them in place: mapped when it is a regular file, so
// its pages are the page cache's (and counted once, as the file), not copies on the heap; read
// whole, under the same cap, when it is a pipe or a device. Readers index the bytes and decode
// only the pieces they need (labels, corpora), so what they allocate does not grow with the file.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of one file, mapped or read; immutable.
public final class FileBytes: @unchecked Sendable {
    // Immutable after init: a read-only map or a Data nobody else holds.
    public let path: String
    private let mapped: MappedFile?
    private let data: Data?

    private init(path: String, mapped: MappedFile?, data: Data?) {
        self.path = path
        self.mapped = mapped
        self.data = data
    }

    /// The file at `path`, or nil if it cannot be opened or read (missing, a directory, no
    /// permission): callers say which. Throws `FormatError.fileTooLarge` as `WholeFile.contents`
    /// does: a regular file by its size before it is mapped, anything else once a read passes `limit`.
    public static func open(_ path: String, what: String, limit: Int) throws -> FileBytes? {
        let fd = openReadOnly(path)
        guard fd >= 0 else { return nil }
        var info = stat()
        let statted = fstat(fd, &info) == 0
        close(fd)
        guard statted, (info.st_mode & S_IFMT) != S_IFDIR else { return nil }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return try WholeFile.contents(path, what: what, limit: limit).map { FileBytes(path: path, mapped: nil, data: $0) }
        }
        if Int64(info.st_size) > Int64(limit) {
            throw FormatError.fileTooLarge(path: path, what: what, size: Int64(info.st_size), limit: limit)
        }
        guard let map = try? MappedFile(path: path) else { return nil }
        if map.bytes.count > limit {
            // Grew between the two looks.
            throw FormatError.fileTooLarge(path: path, what: what, size: Int64(map.bytes.count), limit: limit)
        }
        return FileBytes(path: path, mapped: map, data: nil)
    }

    /// Bytes held in memory, as if read from `path` (tests, and readers handed data).
    public convenience init(_ data: Data, path: String) {
        self.init(path: path, mapped: nil, data: data)
    }

    public var count: Int { mapped?.bytes.count ?? data?.count ?? 0 }

    /// Calls `body` with the bytes; the pointer is valid only during the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let mapped { return try body(mapped.bytes) }
        if let data { return try data.withUnsafeBytes(body) }
        return try body(UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Calls `body` with the bytes as `Data`: the map itself, not a copy, for a mapped file. The
    /// `Data` must not outlive the call.
    public func withData<R>(_ body: (Data) throws -> R) rethrows -> R {
        if let data { return try body(data) }
        guard let mapped, let base = mapped.bytes.baseAddress else { return try body(Data()) }
        return try body(Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: mapped.bytes.count, deallocator: .none))
    }

    /// Whether the bytes are well-formed UTF-8, checked in place.
    public var isUTF8: Bool {
        withUnsafeBytes { b in
            var iterator = b.makeIterator()
            var decoder = UTF8()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: return true
                case .error: return false
                }
            }
        }
    }

    /// A copy of `range` (clamped to the file), for a decoder that wants `Data`.
    public func data(_ range: Range<Int>) -> Data {
        withUnsafeBytes { b in
            let r = max(0, min(range.lowerBound, b.count))..<max(0, min(range.upperBound, b.count))
            return r.isEmpty ? Data() : Data(b[r])
        }
    }
}

/// `open(2)` read-only (a free function: inside `FileBytes` the name `open` is the factory's).
private func openReadOnly(_ path: String) -> Int32 { open(path, O_RDONLY | O_CLOEXEC) }
