// The audit log of `probity serve --audit-log FILE.jsonl`: one line per finished request, the JSON
// of its one-case audit report (compact, no newline inside), appended with one write of the whole
// line under a lock to a file opened O_APPEND, and rotated by size (FILE → FILE.1 → … → FILE.5).
// `probity report merge FILE.jsonl` joins a log's requests into one report.

import Foundation
import ProbityAudit

/// An append-only JSONL file of served requests.
public final class AuditLog: @unchecked Sendable {
    public let path: String
    /// The size past which the file is rotated before the next line.
    public let maxBytes: Int
    /// Rotated files kept (FILE.1 is the newest).
    public let keep: Int

    private let lock = NSLock()
    private var fd: Int32 = -1
    private var size = 0
    private var counter = 0

    /// Opens (or creates) the log. Throws when the file cannot be opened for appending.
    public init(path: String, maxBytes: Int = 64 << 20, keep: Int = 5) throws {
        self.path = path
        self.maxBytes = max(1, maxBytes)
        self.keep = max(1, keep)
        try open()
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    private func open() throws {
        let f = Foundation.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard f >= 0 else {
            throw OpenError(description: "\(path): cannot open the audit log for appending: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        size = fstat(f, &st) == 0 ? Int(st.st_size) : 0
        fd = f
    }

    /// A case index unique in the log: the request's start in milliseconds since 1970 times 1000,
    /// plus a counter mod 1000.
    public func nextIndex(startedAt: Date) -> Int {
        lock.lock()
        defer { lock.unlock() }
        counter = (counter + 1) % 1000
        return Int((startedAt.timeIntervalSince1970 * 1000).rounded(.down)) * 1000 + counter
    }

    /// Appends `report` as one line.
    public func append(_ report: AuditReport) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(report)
        // A compact encoding escapes newlines in strings; none can be inside.
        line.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        if size > 0 && size + line.count > maxBytes { try rotate() }
        try line.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var done = 0
            while done < raw.count {
                let n = write(fd, base + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw OpenError(description: "\(path): cannot append to the audit log: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
        size += line.count
    }

    /// FILE.(keep-1) → FILE.keep, …, FILE → FILE.1, then a new FILE.
    private func rotate() throws {
        close(fd)
        fd = -1
        let fm = FileManager.default
        try? fm.removeItem(atPath: "\(path).\(keep)")
        for i in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(i)") {
            _ = rename("\(path).\(i)", "\(path).\(i + 1)")
        }
        _ = rename(path, "\(path).1")
        try open()
    }
}
