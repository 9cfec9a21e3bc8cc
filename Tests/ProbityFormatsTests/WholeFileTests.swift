// The bounded whole-file reader: a file at its cap is read, one byte more is refused before it is
// read, a device that never ends is refused after the cap, and what cannot be read is nil.

import Foundation
import ProbityFormats
import Testing

@Suite struct WholeFileTests {
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-wholefile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func readsAFileAtItsCapAndRefusesOneByteMore() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let url = dir.appendingPathComponent("a.json")
        try bytes.write(to: url)
        #expect(try WholeFile.contents(url.path, what: "report", limit: bytes.count) == bytes)
        #expect(throws: FormatError.fileTooLarge(path: url.path, what: "report", size: Int64(bytes.count), limit: bytes.count - 1)) {
            try WholeFile.contents(url.path, what: "report", limit: bytes.count - 1)
        }
        let empty = dir.appendingPathComponent("empty")
        try Data().write(to: empty)
        #expect(try WholeFile.contents(empty.path, what: "report", limit: 0) == Data())
    }

    /// A sparse file far above the cap costs nothing to make and is refused by its size alone.
    @Test func refusesAHugeSparseFileByItsSize() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("huge.json")
        #expect(FileManager.default.createFile(atPath: url.path, contents: nil))
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 8 << 30)
        try handle.close()
        let error = #expect(throws: FormatError.self) {
            try WholeFile.contents(url.path, what: "labels file", limit: FileSizeLimits.labels)
        }
        #expect(error?.description == "\(url.path): labels file too large: expected at most 536870912 bytes (512 MiB), found 8589934592 bytes")
    }

    #if os(Linux)
    /// A device that never ends: refused once a read passes the cap, never read further.
    @Test func refusesAnEndlessDeviceAfterTheCap() throws {
        let error = #expect(throws: FormatError.self) {
            try WholeFile.contents("/dev/zero", what: "messages file", limit: 5 << 20)
        }
        #expect(error == .fileTooLarge(path: "/dev/zero", what: "messages file", size: nil, limit: 5 << 20))
        #expect(error?.description.hasSuffix("found more (not a regular file: read until past the cap)") == true)
    }
    #endif

    @Test func whatCannotBeReadIsNil() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try WholeFile.contents(dir.path, what: "report", limit: 100) == nil)
        #expect(try WholeFile.contents(dir.appendingPathComponent("missing").path, what: "report", limit: 100) == nil)
    }
}
