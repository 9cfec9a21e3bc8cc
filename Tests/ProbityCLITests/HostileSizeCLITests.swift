// Peak memory of the real binary on large hostile GGUF files, measured by scripts/lib/peak-rss.py:
// a small process that spawns and reaps `probity` alone, so the peak is the command's own (a child
// spawned from this large test process would report at least this process's high-water mark).

import Foundation
import ProbityFormats
import Testing

@Suite struct HostileSizeCLITests {
    /// What the process takes besides the file and the decoded metadata (the Swift runtime,
    /// Foundation, the command; 27 MB on a tiny file), with room for malloc's own overhead on the
    /// budget's small objects.
    static let processBytes = 48 << 20

    struct Peak: Decodable {
        var status: Int32
        var peakBytes: Int
        enum CodingKeys: String, CodingKey { case status, peakBytes = "peak_bytes" }
    }

    static func peak(_ arguments: [String]) throws -> Peak {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/lib/peak-rss.py").path
        let r = try CLI.execute(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, CLI.binary.path] + arguments,
                                environment: ProcessInfo.processInfo.environment, in: nil)
        guard r.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSDebugDescriptionErrorKey: r.stderr]) }
        return try JSONDecoder().decode(Peak.self, from: Data(r.stdout.utf8))
    }

    static func header(pairs: UInt64) -> [UInt8] {
        var b = Array("GGUF".utf8)
        withUnsafeBytes(of: UInt32(3).littleEndian) { b += $0 }
        withUnsafeBytes(of: UInt64(0).littleEndian) { b += $0 }
        withUnsafeBytes(of: pairs.littleEndian) { b += $0 }
        return b
    }

    static func arrayPair(_ key: String, elementType: UInt32, count: Int) -> [UInt8] {
        var b: [UInt8] = []
        withUnsafeBytes(of: UInt64(key.utf8.count).littleEndian) { b += $0 }
        b += Array(key.utf8)
        withUnsafeBytes(of: UInt32(9).littleEndian) { b += $0 }
        withUnsafeBytes(of: elementType.littleEndian) { b += $0 }
        withUnsafeBytes(of: UInt64(count).littleEndian) { b += $0 }
        return b
    }

    /// Files within every count cap, each aimed at one way of making the reader allocate: three
    /// uint8 arrays at the array cap (read: 48 MiB decoded), 790,000 heap strings (read: about
    /// 63 MiB charged), a million of them (refused where the budget runs out), and a million
    /// metadata pairs (refused before the table is made). `inspect` stays within the file, the
    /// decoded-metadata budget and the process's own share; before the budget, a 16 MiB uint8
    /// array alone took 436 MB.
    @Test func inspectStaysWithinTheBound() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = GGUFLimits.maxArrayLength
        var bytes = Self.header(pairs: 3)
        for k in 0..<3 { bytes += Self.arrayPair("a\(k)", elementType: 0, count: n) + [UInt8](repeating: 1, count: n) }
        var sixteen: [UInt8] = []
        withUnsafeBytes(of: UInt64(16).littleEndian) { sixteen += $0 }
        sixteen += Array("0123456789abcdef".utf8)
        func strings(_ count: Int) -> [UInt8] {
            Self.header(pairs: 1) + Self.arrayPair("s", elementType: 8, count: count)
                + Array([[UInt8]](repeating: sixteen, count: count).joined())
        }
        let pairs = GGUFLimits.maxMetadataCount
        let files: [(name: String, bytes: [UInt8], status: Int32)] = [
            ("uint8-arrays.gguf", bytes, 0),
            ("heap-strings-fit.gguf", strings(790_000), 0),
            ("heap-strings.gguf", strings(1_000_000), 2),
            ("pairs.gguf", Self.header(pairs: UInt64(pairs)) + [UInt8](repeating: 0, count: pairs * 13), 2),
        ]
        for file in files {
            let url = dir.appendingPathComponent(file.name)
            try Data(file.bytes).write(to: url)
            let peak = try Self.peak(["inspect", url.path])
            let bound = file.bytes.count + GGUFLimits.maxDecodedBytes + Self.processBytes
            #expect(peak.status == file.status, "\(file.name)")
            if file.name == "pairs.gguf" {
                // Refused before any table is made: the measure is the command's own, not this process's.
                #expect(peak.peakBytes < Self.processBytes, "pairs.gguf: peak \(peak.peakBytes >> 20) MiB")
            }
            #expect(peak.peakBytes <= bound, "\(file.name): peak \(peak.peakBytes >> 20) MiB, bound \(bound >> 20) MiB")
        }
    }

    /// Files read whole (reports, labels, messages) far above their caps: refused with exit 2 before
    /// they are read, whatever their size (sparse files of 8 GiB), and a device that never ends is
    /// refused after its cap. Before the caps, these were read until memory ran out.
    @Test func filesReadWholeAreRefusedAboveTheirCaps() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        func sparse(_ name: String) throws -> URL {
            let url = dir.appendingPathComponent(name)
            #expect(FileManager.default.createFile(atPath: url.path, contents: nil))
            let handle = try FileHandle(forWritingTo: url)
            try handle.truncate(atOffset: 8 << 30)
            try handle.close()
            return url
        }
        let report = try sparse("report.json")
        let merged = try CLI.run(["report", "merge", report.path, report.path, "--out", dir.appendingPathComponent("m.json").path])
        #expect(merged.status == 2)
        #expect(merged.stderr.contains("\(report.path): report too large: expected at most 536870912 bytes (512 MiB), found 8589934592 bytes"),
                "\(merged.stderr)")

        let pack = dir.appendingPathComponent("pack")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: RulesCLITests.fixtures + "/packs/caa-toy"), to: pack)
        try FileManager.default.removeItem(at: pack.appendingPathComponent("labels.json"))
        let labels = pack.appendingPathComponent("labels.json")
        try FileManager.default.moveItem(at: try sparse("labels.json"), to: labels)
        let info = try Self.peak(["features", "info", pack.path])
        #expect(info.status == 2)
        #expect(info.peakBytes < Self.processBytes, "features info: peak \(info.peakBytes >> 20) MiB")

        let html = try Self.peak(["report", "html", "/dev/zero", "--out", dir.appendingPathComponent("r.html").path])
        #expect(html.status == 2)
        // The cap (512 MiB) read once, plus the process.
        #expect(html.peakBytes < FileSizeLimits.report + Self.processBytes, "report html /dev/zero: peak \(html.peakBytes >> 20) MiB")
    }

    /// A labels file costs its index and one decoded feature beyond its mapped bytes, whatever its
    /// length: the default pack's 8192 latents written four times over (32,768 latents, 43 MB) cost
    /// `features show` and `features info` no more than that pack with a 200-latent file plus the
    /// file plus `labelsBound`. Read whole and decoded at once, they cost about 9 bytes a byte.
    @Test func labelsCostTheirIndexNotTheirLength() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let source = root.appendingPathComponent("packs/smollm2-l15")
        let pack = dir.appendingPathComponent("pack")
        try FileManager.default.createDirectory(at: pack, withIntermediateDirectories: true)
        for name in ["cfg.json", "pack.json", "sae_weights.safetensors"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: pack.appendingPathComponent(name))
        }
        let text = try String(contentsOf: source.appendingPathComponent("labels.json"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let features = try #require(lines.firstIndex { $0.hasPrefix("],") })
        let entries = lines[1..<features].map { $0.hasSuffix(",") ? $0.dropLast() : $0 }
        #expect(entries.count == 8192)
        func labels(copies: Int, first: Int) -> Data {
            var out = Data("{\"features\": [\n".utf8)
            var n = 0
            for _ in 0..<copies {
                for entry in entries.prefix(first) {
                    guard let idEnd = entry.firstIndex(of: ",") else { continue }
                    if n > 0 { out.append(contentsOf: Array(",\n".utf8)) }
                    out.append(contentsOf: Array("{\"id\":\"\(n)\"".utf8))
                    out.append(contentsOf: Array(entry[idEnd...].utf8))
                    n += 1
                }
            }
            out.append(contentsOf: Array("\n]}\n".utf8))
            return out
        }
        let file = pack.appendingPathComponent("labels.json")
        try labels(copies: 1, first: 200).write(to: file)
        let small = [try Self.peak(["features", "show", pack.path, "100"]), try Self.peak(["features", "info", pack.path])]
        let large = labels(copies: 4, first: 8192)
        try large.write(to: file)
        let big = [try Self.peak(["features", "show", pack.path, "100"]), try Self.peak(["features", "info", pack.path])]
        for (command, (a, b)) in zip(["show", "info"], zip(small, big)) {
            #expect(a.status == 0 && b.status == 0, "features \(command)")
            let bound = a.peakBytes + large.count + Self.labelsBound
            let message = "features \(command): peak \(b.peakBytes >> 20) MiB on \(large.count >> 20) MiB of labels, "
                + "\(a.peakBytes >> 20) MiB on 200 latents, bound \(bound >> 20) MiB"
            #expect(b.peakBytes <= bound, "\(message)")
        }
    }

    /// What a labels file may cost beyond its mapped bytes (docs/FUZZING.md): the index at
    /// `LabelsFileLimits.maxFeatures` (28 MiB, with a transient copy while it is sorted) and one
    /// feature decoded under its caps.
    static let labelsBound = 64 << 20

    /// A corpus costs its largest document beyond its mapped bytes: `features stats` over the first
    /// 200 tokens of a 40 MB chitchat file (40,000 conversations) or a 40 MB text file (one
    /// paragraph each) costs no more than over a 10-conversation file plus the file plus
    /// `corpusBound`. Read whole, the chitchat file was decoded to one Foundation tree before the
    /// first document, and the text file split into a list of every paragraph.
    @Test func corporaCostTheirLargestDocumentNotTheirLength() throws {
        let (dir, pack, _) = try FeatureStatsCLITests.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        func chitchat(_ conversations: Int) -> Data {
            var out = "{"
            for c in 0..<conversations {
                let turns = (0..<8).map { t in
                    #"[{"sender":"\#(t % 2 == 0 ? "a" : "b")","text":"The train from London arrives in the late afternoon, just before dinner, number \#(c * 8 + t).","timestamp":"2018-01-01"}]"#
                }
                out += (c > 0 ? ",\n" : "") + #""\#(String(format: "%08d", c))-uuid":{"messages":[\#(turns.joined(separator: ","))]}"#
            }
            return Data((out + "}\n").utf8)
        }
        func text(_ paragraphs: Int) -> Data {
            Data((0..<paragraphs).map { "Many tourists visit Paris every spring to see the museums, paragraph \($0); " + String(repeating: "and the river. ", count: 60) }
                .joined(separator: "\n\n").utf8)
        }
        for (name, small, large) in [("chitchat.json", chitchat(10), chitchat(40_000)), ("corpus.txt", text(10), text(40_000))] {
            let corpus = dir.appendingPathComponent(name)
            func peak() throws -> Peak {
                try Self.peak(["features", "stats", pack, "--corpus", corpus.path, "--tokens", "200", "--split", "all", "--window", "64"])
            }
            try small.write(to: corpus)
            let a = try peak()
            try large.write(to: corpus)
            let b = try peak()
            #expect(a.status == 0 && b.status == 0, "\(name)")
            let bound = a.peakBytes + large.count + Self.corpusBound
            let message = "\(name): peak \(b.peakBytes >> 20) MiB on \(large.count >> 20) MiB, \(a.peakBytes >> 20) MiB on 10 documents, "
                + "bound \(bound >> 20) MiB"
            #expect(large.count > 30 << 20 && b.peakBytes <= bound, "\(message)")
        }
    }

    /// What a corpus may cost beyond its mapped bytes and its largest document, for these files:
    /// the index of a chitchat file's conversations (12 bytes each) and the documents' decoding.
    static let corpusBound = 32 << 20
}
