// A labels file read in place: mapped, validated whole by the strict scanner, outlined (each
// feature's byte range), and checked entry by entry as it is read, so a bad file fails at load with
// the message the whole-file reading gives. What stays in memory is an index of a few words per
// feature; a feature's label is decoded from the file when it is asked for. Bounds: docs/FUZZING.md.

import Foundation
import ProbityFormats
import Synchronization

/// Caps that keep a labels file's index and any one decoded feature to a stated size, whatever the
/// file's length (docs/FUZZING.md, "Bounds on hostile input").
public enum LabelsFileLimits {
    /// Most features in one file: a 131,072-latent SAE has 131,072. The index costs 28 bytes a
    /// feature (28 MiB at the cap), and a transient copy while it is sorted.
    public static let maxFeatures = 1 << 20
    /// Most bytes one feature may take in the file: the default pack's take 1.3 KB (5 contexts of
    /// 13 tokens).
    public static let maxFeatureBytes = 1 << 20
    /// Most JSON values one feature, or the `scan` record, may hold: 65,536 values decode to about
    /// 16 MiB of Foundation objects.
    public static let maxFeatureValues = 1 << 16
}

/// The index of a validated labels file: where each feature is, and the hashes that find it.
final class LabelsFile: Sendable {
    let bytes: FileBytes
    let path: String
    /// Each feature's byte range in the file, in file order (`UInt32`: files are capped at 512 MiB).
    private let starts: [UInt32]
    private let ends: [UInt32]
    /// The features' id hashes, ascending, and the features they belong to (one per distinct id:
    /// the last in the file, as `FeatureLabels.init` keeps the last of duplicates).
    private let idHashes: [UInt64]
    private let idEntries: [UInt32]
    /// By feature: the hash of its name (0 when it has none).
    private let nameHashes: [UInt64]
    /// Whether any feature holds top contexts.
    let hasContexts: Bool

    /// Distinct ids in the file.
    var count: Int { idEntries.count }

    private init(bytes: FileBytes, starts: [UInt32], ends: [UInt32], idHashes: [UInt64], idEntries: [UInt32],
                 nameHashes: [UInt64], hasContexts: Bool) {
        self.bytes = bytes
        self.path = bytes.path
        self.starts = starts
        self.ends = ends
        self.idHashes = idHashes
        self.idEntries = idEntries
        self.nameHashes = nameHashes
        self.hasContexts = hasContexts
    }

    /// The files read last, by path and the SHA-256 of their bytes, most recent last: a pack's
    /// labels are validated, outlined and checked once per process even when rules are checked and
    /// then the pack is loaded (an audit, an eval and the server do both). Hashing a mapped 10 MB
    /// file takes about 7 ms with the CPU's SHA extensions; reading it, about 150 ms.
    private static let recent = Mutex<[(path: String, digest: String, file: LabelsFile, scan: FeatureScanRecord?)]>([])
    /// How many files `recent` keeps (and keeps mapped).
    static let recentCapacity = 4

    /// The labels file at `path`: mapped, then validated, outlined and checked, unless this process
    /// already did that for the same bytes at the same path.
    static func opened(_ path: String) throws -> (LabelsFile, FeatureScanRecord?) {
        guard let bytes = try FileBytes.open(path, what: "labels file", limit: FileSizeLimits.labels) else {
            throw FeatureError.missingFile(path: path, what: "labels file")
        }
        let digest = bytes.withUnsafeBytes { SHA256.hex($0) }
        if let hit = recent.withLock({ $0.last { $0.path == path && $0.digest == digest } }) { return (hit.file, hit.scan) }
        let (file, scan) = try open(bytes)
        recent.withLock { list in
            list.removeAll { $0.path == path }
            list.append((path, digest, file, scan))
            if list.count > recentCapacity { list.removeFirst(list.count - recentCapacity) }
        }
        return (file, scan)
    }

    /// Validates, outlines and checks the file; returns its index and its scan record.
    /// - Complexity: O(file) time; memory: the index plus one decoded feature at a time.
    static func open(_ bytes: FileBytes) throws -> (LabelsFile, FeatureScanRecord?) {
        let path = bytes.path
        let shape = FeatureError.badLabels(path: path, reason: "expected {\"features\": [...]} with one object per feature")
        var starts: [UInt32] = [], ends: [UInt32] = []
        var scanRange: Range<Int>?
        try bytes.withUnsafeBytes { b in
            try StrictJSON.validate(b, path: path)
            let top = JSONOutline.skipSpace(b, from: 0)
            guard JSONOutline.kind(b, at: top) == .object else { throw shape }
            var featuresAt: Int?
            try JSONOutline.forEachMember(b, ofObjectAt: top) { key, value in
                if key == Array("features".utf8) { featuresAt = value.lowerBound }
                // `"scan": null` is no scan, as the whole-file reading has it.
                if key == Array("scan".utf8), !(value.count == 4 && b[value.lowerBound] == UInt8(ascii: "n")) { scanRange = value }
                return true
            }
            guard let featuresAt, JSONOutline.kind(b, at: featuresAt) == .array else { throw shape }
            try JSONOutline.forEachElement(b, ofArrayAt: featuresAt) { range, values in
                guard JSONOutline.kind(b, at: range.lowerBound) == .object else { throw shape }
                guard range.count <= LabelsFileLimits.maxFeatureBytes, values <= LabelsFileLimits.maxFeatureValues else {
                    throw FeatureError.badLabels(path: path, reason: "features[\(starts.count)]: expected at most "
                                                 + "\(LabelsFileLimits.maxFeatureBytes) bytes and \(LabelsFileLimits.maxFeatureValues) "
                                                 + "values in one feature (a cap on the memory reading it takes), found \(range.count) "
                                                 + "bytes and \(values) values")
                }
                guard starts.count < LabelsFileLimits.maxFeatures else {
                    throw FeatureError.badLabels(path: path, reason: "expected at most \(LabelsFileLimits.maxFeatures) features "
                                                 + "(a cap on the memory the index takes), found more")
                }
                // Files are capped far below 4 GiB, so offsets fit; checked all the same.
                guard let start = UInt32(exactly: range.lowerBound), let end = UInt32(exactly: range.upperBound) else { throw shape }
                starts.append(start)
                ends.append(end)
                return true
            }
        }
        // Every feature checked in file order, as the whole-file reading checks them.
        var pairs: [(hash: UInt64, entry: UInt32)] = []
        pairs.reserveCapacity(starts.count)
        var nameHashes: [UInt64] = []
        nameHashes.reserveCapacity(starts.count)
        var hasContexts = false
        for n in starts.indices {
            let label = try decodeFeature(bytes, Int(starts[n])..<Int(ends[n]), number: n)
            pairs.append((fnv1a64(label.id), UInt32(n)))
            nameHashes.append(label.name.map(nameHash) ?? 0)
            hasContexts = hasContexts || label.contexts != nil
        }
        var scan: FeatureScanRecord?
        if let scanRange { scan = try decodeScan(bytes, scanRange) }
        // By hash, then file order; of entries with equal ids only the last is kept. A run of
        // equal hashes is walked from its end, remembering its ids (collisions aside, one).
        pairs.sort { $0.hash != $1.hash ? $0.hash < $1.hash : $0.entry < $1.entry }
        let unindexed = LabelsFile(bytes: bytes, starts: starts, ends: ends, idHashes: [], idEntries: [],
                                   nameHashes: [], hasContexts: false)
        var kept: [(hash: UInt64, entry: UInt32)] = []
        kept.reserveCapacity(pairs.count)
        var runEnd = pairs.count
        while runEnd > 0 {
            var runStart = runEnd - 1
            while runStart > 0, pairs[runStart - 1].hash == pairs[runEnd - 1].hash { runStart -= 1 }
            var seen = Set<String>()
            var run: [(hash: UInt64, entry: UInt32)] = []
            for pair in pairs[runStart..<runEnd].reversed() where seen.insert(unindexed.id(ofEntry: Int(pair.entry)) ?? "").inserted {
                run.append(pair)
            }
            kept.append(contentsOf: run)  // descending; the whole list is reversed below
            runEnd = runStart
        }
        kept.reverse()
        pairs = []
        let file = LabelsFile(bytes: bytes, starts: starts, ends: ends, idHashes: kept.map(\.hash), idEntries: kept.map(\.entry),
                              nameHashes: nameHashes, hasContexts: hasContexts)
        return (file, scan)
    }

    /// The label with `id`, decoded from the file.
    func label(_ id: String) -> FeatureLabel? {
        entry(of: id).flatMap { label(ofEntry: $0) }
    }

    /// The entry holding `id`, if any.
    func entry(of id: String) -> Int? {
        let hash = fnv1a64(id)
        var lo = 0, hi = idHashes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if idHashes[mid] < hash { lo = mid + 1 } else { hi = mid }
        }
        var k = lo
        while k < idHashes.count, idHashes[k] == hash {
            if self.id(ofEntry: Int(idEntries[k])) == id { return Int(idEntries[k]) }
            k += 1
        }
        return nil
    }

    /// The entries (one per distinct id), in file order.
    var entries: [Int] { idEntries.map(Int.init).sorted() }

    /// The entries of features named `name`.
    func entries(named name: String) -> [Int] {
        let hash = nameHash(name)
        return nameHashes.indices.filter { n in
            guard nameHashes[n] == hash, let label = label(ofEntry: n), label.name == name else { return false }
            return entry(of: label.id) == n  // not replaced by a later entry with its id
        }
    }

    /// The label of entry `n`, decoded from the file. Nil only if the file changed since it was
    /// checked at load (it is mapped, not copied).
    func label(ofEntry n: Int) -> FeatureLabel? {
        guard n >= 0, n < starts.count else { return nil }
        return try? Self.decodeFeature(bytes, Int(starts[n])..<Int(ends[n]), number: n)
    }

    /// Entry `n`'s label without its statistics (`FeatureLabels.forEachHeadline`): the members
    /// other than `histogram`, `contexts` and `topExamples`, read from the file alone. Entries
    /// were checked whole at load, so these are the values the whole label holds; an entry the
    /// typed reading cannot take is decoded whole instead.
    func headline(ofEntry n: Int) -> FeatureLabel? {
        guard n >= 0, n < starts.count else { return nil }
        let range = Int(starts[n])..<Int(ends[n])
        if let label = bytes.withUnsafeBytes({ FeatureLabels.fastHeadline($0, range) }) { return label }
        guard var whole = label(ofEntry: n) else { return nil }
        whole.histogram = nil
        whole.contexts = nil
        whole.topExamples = nil
        return whole
    }

    /// The id of entry `n`, read from its "id" member alone.
    func id(ofEntry n: Int) -> String? {
        guard n >= 0, n < starts.count else { return nil }
        return bytes.withUnsafeBytes { b -> String? in
            guard let value = try? JSONOutline.member("id", b, ofObjectAt: Int(starts[n])) else { return nil }
            switch JSONOutline.kind(b, at: value.lowerBound) {
            case .string: return (try? JSONOutline.decodedString(b, at: value.lowerBound)).map { String(decoding: $0.utf8, as: UTF8.self) }
            case .number:
                guard let d = Double(String(decoding: b[value], as: UTF8.self)), d.rounded() == d, abs(d) < 1e15 else { return nil }
                return String(Int(d))
            default: return nil
            }
        }
    }

    /// One feature, within its caps (checked when the file was outlined): the typed reading, or,
    /// when it cannot, the careful one, which names what is wrong.
    static func decodeFeature(_ bytes: FileBytes, _ range: Range<Int>, number n: Int) throws -> FeatureLabel {
        let path = bytes.path
        if let label = bytes.withUnsafeBytes({ FeatureLabels.fastLabel($0, range) }) { return label }
        let data = bytes.data(range)
        let object = try StrictJSON.object(from: data, path: path, fileOffset: range.lowerBound, line: nil)
        guard let entry = object as? [String: Any] else {
            throw FeatureError.badLabels(path: path, reason: "expected {\"features\": [...]} with one object per feature")
        }
        return try FeatureLabels.carefulLabel(entry, number: n, path: path)
    }

    /// The `scan` record, typed or careful, under the same caps as a feature.
    static func decodeScan(_ bytes: FileBytes, _ range: Range<Int>) throws -> FeatureScanRecord {
        let path = bytes.path
        let values = try bytes.withUnsafeBytes { try JSONOutline.skipValue($0, at: range.lowerBound).values }
        guard range.count <= LabelsFileLimits.maxFeatureBytes, values <= LabelsFileLimits.maxFeatureValues else {
            throw FeatureError.badLabels(path: path, reason: "scan: expected at most \(LabelsFileLimits.maxFeatureBytes) bytes and "
                                         + "\(LabelsFileLimits.maxFeatureValues) values, found \(range.count) bytes and \(values) values")
        }
        let data = bytes.data(range)
        if let record = FeatureLabels.fastScan(data) { return record }
        return try FeatureLabels.parseScan(try StrictJSON.object(from: data, path: path, fileOffset: range.lowerBound, line: nil),
                                           path: path)
    }
}

/// A name's hash, never 0 (0 stands for no name).
private func nameHash(_ name: String) -> UInt64 { fnv1a64(name) | 1 }
