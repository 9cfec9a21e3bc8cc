// Training corpora for SAEs: ShareGPT JSON (read record by record, so the published file, which is
// cut off mid-record, yields every complete conversation), chitchat-dataset JSON, plain text and
// JSONL. Each document has a stable id; a hash of it holds out a deterministic evaluation split.
// Files are streamed or mapped and decoded one document at a time, so a reader holds the largest
// document, not the file (docs/FUZZING.md, "Peak memory on large hostile inputs").

import Foundation
import ProbityFormats
import ProbityLM

/// One training document: a conversation (rendered with the model's chat template) or plain text.
public struct CorpusDocument: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case chat([ChatMessage])
        case text(String)
    }
    /// Stable within its file: the conversation id, or `line N` / `paragraph N`.
    public var id: String
    public var content: Content

    public init(id: String, content: Content) {
        self.id = id
        self.content = content
    }

    /// Whether the document belongs to the held-out evaluation split: FNV-1a of the id, one in
    /// `heldOutModulus` documents. Training reads the others, evaluation only these.
    public var isHeldOut: Bool { fnv1a64(id) % UInt64(Corpus.heldOutModulus) == 0 }
}

/// Which split of a corpus to read.
public enum CorpusSplit: String, Sendable {
    case train
    case heldOut = "held-out"
    case all
}

/// A corpus file and its format, decided by content and extension.
public struct Corpus: Sendable {
    /// One document in this many is held out for evaluation.
    public static let heldOutModulus = 50

    public enum Format: String, Sendable {
        case shareGPT = "sharegpt"
        case chitchat
        case text
        case jsonl
    }

    public let path: String
    public let format: Format

    /// Opens `path`, checking it is readable and guessing its format: `.txt` text, `.jsonl` JSONL,
    /// a JSON array ShareGPT, a JSON object chitchat.
    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
            throw TrainingError.missingCorpus(path: path)
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw TrainingError.unreadableCorpus(path: path, reason: "cannot open for reading") }
        defer { try? handle.close() }
        let head: Data
        do { head = try handle.read(upToCount: 4096) ?? Data() } catch {
            throw TrainingError.unreadableCorpus(path: path, reason: "\(error.localizedDescription)")
        }
        self.path = path
        let lower = path.lowercased()
        if lower.hasSuffix(".txt") {
            format = .text
        } else if lower.hasSuffix(".jsonl") {
            format = .jsonl
        } else {
            switch head.first(where: { !Corpus.isJSONSpace($0) }) {
            case UInt8(ascii: "["): format = .shareGPT
            case UInt8(ascii: "{"): format = .chitchat
            default:
                throw TrainingError.unreadableCorpus(
                    path: path, reason: "expected .txt, .jsonl, a ShareGPT JSON array or a chitchat JSON object")
            }
        }
    }

    static func isJSONSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    /// Calls `body` with each document of `split` in file order until it returns false.
    /// A ShareGPT file stops quietly at its first incomplete record (the published file ends mid-record).
    public func forEachDocument(split: CorpusSplit, _ body: (CorpusDocument) throws -> Bool) throws {
        let filtered: (CorpusDocument) throws -> Bool = { doc in
            switch split {
            case .all: return try body(doc)
            case .train: return doc.isHeldOut ? true : try body(doc)
            case .heldOut: return doc.isHeldOut ? try body(doc) : true
            }
        }
        switch format {
        case .shareGPT: try ShareGPTReader(path: path).forEach(filtered)
        case .chitchat: try readChitchat(filtered)
        case .text: try readText(filtered)
        case .jsonl: try readJSONL(filtered)
        }
    }

    /// The file, mapped (or read whole when it is a pipe or device), under the corpus cap.
    private func contents() throws -> FileBytes {
        guard let bytes = try FileBytes.open(path, what: "corpus", limit: FileSizeLimits.corpus) else {
            throw TrainingError.unreadableCorpus(path: path, reason: "cannot read")
        }
        return bytes
    }

    /// Paragraphs (separated by blank lines) are documents. The file is checked to be UTF-8 whole
    /// first, as reading it into one `String` did, then cut where `components(separatedBy: "\n\n")`
    /// cuts a `String` (two "\n" characters: a "\n" byte pair not preceded by "\r", which would
    /// make the first a "\r\n"), one paragraph decoded at a time.
    private func readText(_ body: (CorpusDocument) throws -> Bool) throws {
        let file = try contents()
        guard file.isUTF8 else { throw TrainingError.unreadableCorpus(path: path, reason: "not UTF-8 text") }
        var index = 0
        let count = file.count
        // `String(data:encoding:)` dropped a leading byte order mark.
        var start = file.withUnsafeBytes { b in b.count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF ? 3 : 0 }
        while start <= count {
            let end = file.withUnsafeBytes { b in Corpus.paragraphEnd(b, from: start) }
            let text = file.withUnsafeBytes { b in String(decoding: b[start..<end], as: UTF8.self) }
            start = end + 2
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            index += 1
            if !(try body(CorpusDocument(id: "paragraph \(index)", content: .text(trimmed)))) { return }
        }
    }

    /// Where the paragraph starting at `start` ends: at the next separating "\n\n", or the end.
    static func paragraphEnd(_ b: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        while i + 1 < b.count {
            if b[i] == 0x0A, b[i + 1] == 0x0A, i == 0 || b[i - 1] != 0x0D { return i }
            i += 1
        }
        return b.count
    }

    /// One `{"text": ...}` object (or a JSON string) per line, each decoded alone from the mapped file.
    private func readJSONL(_ body: (CorpusDocument) throws -> Bool) throws {
        let file = try contents()
        var lineNumber = 0
        var start = 0
        while start <= file.count {
            let end = file.withUnsafeBytes { b in (start..<b.count).first { b[$0] == UInt8(ascii: "\n") } ?? b.count }
            let line = file.data(start..<end)
            let offset = start
            start = end + 1
            lineNumber += 1
            if line.allSatisfy(Corpus.isJSONSpace) { continue }
            let object = try StrictJSON.object(from: line, path: path, fileOffset: offset, line: lineNumber)
            let text: String
            if let s = object as? String {
                text = s
            } else if let o = object as? [String: Any], let s = o["text"] as? String {
                text = s
            } else {
                throw TrainingError.badCorpusRecord(path: path, record: "line \(lineNumber)",
                                                    reason: "expected a string or an object with a string \"text\"")
            }
            if !(try body(CorpusDocument(id: "line \(lineNumber)", content: .text(text)))) { return }
        }
    }

    /// Most conversations in a chitchat file: the index of their places costs 12 bytes each
    /// (12 MiB at the cap); the chitchat dataset has 7,168. The validation before it holds at most
    /// `StrictJSON.maxOpenKeys` keys in one object, the same number.
    public static let maxChitchatConversations = StrictJSON.maxOpenKeys

    /// chitchat-dataset: `{uuid: {"messages": [[{"text", "sender", "timestamp"}, ...], ...]}}`.
    /// Each inner list is one turn (consecutive messages of one sender); the conversation's first
    /// sender is the user, the other the assistant. Conversations come in uuid order. The file is
    /// validated whole, outlined (where each conversation's key and value are), and each
    /// conversation decoded alone.
    private func readChitchat(_ body: (CorpusDocument) throws -> Bool) throws {
        let file = try contents()
        struct Place { var key: UInt32, start: UInt32, end: UInt32 }
        var places: [Place] = []
        try file.withUnsafeBytes { b in
            try StrictJSON.validate(b, path: path)
            let top = JSONOutline.skipSpace(b, from: 0)
            guard JSONOutline.kind(b, at: top) == .object else {
                throw TrainingError.unreadableCorpus(path: path, reason: "expected a JSON object of conversations")
            }
            var keyAt = JSONOutline.skipSpace(b, from: top + 1)
            try JSONOutline.forEachMember(b, ofObjectAt: top) { _, value in
                guard places.count < Corpus.maxChitchatConversations else {
                    throw TrainingError.unreadableCorpus(path: path, reason: "expected at most \(Corpus.maxChitchatConversations) "
                                                         + "conversations (a cap on the memory their index takes), found more")
                }
                // Corpora are capped at 1 GiB, so offsets fit; checked all the same.
                guard let key = UInt32(exactly: keyAt), let start = UInt32(exactly: value.lowerBound),
                      let end = UInt32(exactly: value.upperBound) else {
                    throw TrainingError.unreadableCorpus(path: path, reason: "expected a file under 4 GiB")
                }
                places.append(Place(key: key, start: start, end: end))
                // The next key follows the comma after this value.
                keyAt = JSONOutline.skipSpace(b, from: JSONOutline.skipSpace(b, from: value.upperBound) + 1)
                return true
            }
        }
        func key(_ p: Place) -> String {
            file.withUnsafeBytes { b in
                (try? JSONOutline.decodedString(b, at: Int(p.key))).map { String(decoding: $0.utf8, as: UTF8.self) } ?? ""
            }
        }
        // In key order, as the keys of the decoded object sorted (strict JSON has no duplicate keys).
        places.sort { key($0) < key($1) }
        for place in places {
            let id = key(place)
            let value = try StrictJSON.object(from: file.data(Int(place.start)..<Int(place.end)), path: path,
                                              fileOffset: Int(place.start), line: nil)
            guard let convo = value as? [String: Any], let turns = convo["messages"] as? [Any] else {
                throw TrainingError.badCorpusRecord(path: path, record: id, reason: "expected {\"messages\": [[...]]}")
            }
            var messages: [ChatMessage] = []
            var firstSender: String?
            for turn in turns {
                guard let parts = turn as? [Any] else {
                    throw TrainingError.badCorpusRecord(path: path, record: id, reason: "a turn is not a list of messages")
                }
                var texts: [String] = []
                var sender: String?
                for part in parts {
                    guard let m = part as? [String: Any], let text = m["text"] as? String else {
                        throw TrainingError.badCorpusRecord(path: path, record: id, reason: "a message has no string \"text\"")
                    }
                    texts.append(text)
                    sender = sender ?? (m["sender"] as? String)
                }
                if texts.isEmpty { continue }
                if firstSender == nil { firstSender = sender }
                let role: ChatMessage.Role = sender == firstSender ? .user : .assistant
                messages.append(ChatMessage(role: role, content: texts.joined(separator: "\n")))
            }
            if messages.isEmpty { continue }
            if !(try body(CorpusDocument(id: id, content: .chat(messages)))) { return }
        }
    }
}

/// Reads a ShareGPT JSON array (`[{"id", "conversations": [{"from", "value"}]}, ...]`) one record
/// at a time from a byte stream: each top-level object is delimited by tracking strings and
/// nesting, then parsed alone. The array need not be complete.
struct ShareGPTReader {
    let path: String
    static let chunkSize = 1 << 20

    func forEach(_ body: (CorpusDocument) throws -> Bool) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TrainingError.unreadableCorpus(path: path, reason: "cannot open for reading")
        }
        defer { try? handle.close() }
        var buffer: [UInt8] = []
        var scan = 0            // next byte to look at
        var start = -1          // start of the current record, or -1 between records
        var depth = 0
        var inString = false, escaped = false
        var sawArray = false
        var recordIndex = 0
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: Self.chunkSize) ?? Data() } catch {
                throw TrainingError.unreadableCorpus(path: path, reason: "\(error.localizedDescription)")
            }
            if chunk.isEmpty { return }   // end of file: a record still open is incomplete; stop
            buffer.append(contentsOf: chunk)
            while scan < buffer.count {
                let b = buffer[scan]
                if inString {
                    if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                } else if !sawArray {
                    if b == UInt8(ascii: "[") {
                        sawArray = true
                    } else if !Corpus.isJSONSpace(b) {
                        throw TrainingError.unreadableCorpus(path: path, reason: "expected a JSON array of conversations")
                    }
                } else if b == UInt8(ascii: "\"") {
                    inString = true
                } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                    if depth == 0 { start = scan }
                    depth += 1
                } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                    if depth == 0 { return }   // the array's closing bracket
                    depth -= 1
                    if depth == 0 {
                        recordIndex += 1
                        let doc = try parseRecord(buffer[start...scan], index: recordIndex)
                        start = -1
                        if let doc, !(try body(doc)) { return }
                    }
                }
                scan += 1
            }
            // Keep only the open record's bytes.
            let keep = start >= 0 ? start : buffer.count
            buffer.removeFirst(keep)
            scan -= keep
            if start >= 0 { start = 0 }
        }
    }

    /// One record as a document; nil for a record with no usable turns.
    private func parseRecord(_ bytes: ArraySlice<UInt8>, index: Int) throws -> CorpusDocument? {
        let value: Any
        do { value = try StrictJSON.object(from: Data(bytes), path: path, line: nil) } catch let e as JSONSyntaxError {
            // The stream keeps no file offsets; the offset is within the record.
            throw TrainingError.badCorpusRecord(path: path, record: "record \(index)",
                                                reason: "not valid JSON at byte \(e.offset) of the record: expected \(e.expected), found \(e.found)")
        }
        guard let object = value as? [String: Any] else {
            throw TrainingError.badCorpusRecord(path: path, record: "record \(index)", reason: "not a JSON object")
        }
        let id = (object["id"] as? String) ?? "record \(index)"
        guard let turns = object["conversations"] as? [Any] else {
            throw TrainingError.badCorpusRecord(path: path, record: id, reason: "no \"conversations\" list")
        }
        var messages: [ChatMessage] = []
        for turn in turns {
            guard let t = turn as? [String: Any], let from = t["from"] as? String, let value = t["value"] as? String else {
                throw TrainingError.badCorpusRecord(path: path, record: id, reason: "a turn lacks string \"from\" and \"value\"")
            }
            let role: ChatMessage.Role
            switch from {
            case "human", "user": role = .user
            case "gpt", "chatgpt", "bing", "bard", "assistant": role = .assistant
            case "system": role = .system
            default:
                throw TrainingError.badCorpusRecord(path: path, record: id, reason: "unknown speaker \"\(from)\" (expected human, gpt or system)")
            }
            messages.append(ChatMessage(role: role, content: value))
        }
        return messages.isEmpty ? nil : CorpusDocument(id: id, content: .chat(messages))
    }
}
