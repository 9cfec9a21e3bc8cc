// A pack's labels file: feature id → name, description, max activation over a reference corpus,
// and optional top examples. Latent ids are their indices written as decimal strings; direction
// ids are their names.

import Foundation

/// One feature's label.
public struct FeatureLabel: Sendable, Equatable, Codable {
    public var id: String
    public var name: String?
    public var description: String?
    /// The largest activation seen over the pack's reference corpus: the unit of `Nx` values.
    public var maxActivation: Float?
    public var topExamples: [String]?

    /// A label; only `id` is required.
    public init(id: String, name: String? = nil, description: String? = nil, maxActivation: Float? = nil,
                topExamples: [String]? = nil) {
        self.id = id
        self.name = name
        self.description = description
        self.maxActivation = maxActivation
        self.topExamples = topExamples
    }

    enum CodingKeys: String, CodingKey {
        case id, name, description
        case maxActivation = "max_activation"
        case topExamples = "top_examples"
    }
}

/// All labels of a pack, by feature id.
public struct FeatureLabels: Sendable, Equatable {
    public private(set) var byID: [String: FeatureLabel] = [:]

    /// Labels by id; a later duplicate id replaces an earlier one.
    public init(_ labels: [FeatureLabel] = []) {
        for l in labels { byID[l.id] = l }
    }

    /// The label of a feature by id (a direction's name).
    public subscript(id: String) -> FeatureLabel? { byID[id] }
    /// The label of SAE latent `i`.
    public subscript(latent i: Int) -> FeatureLabel? { byID[String(i)] }

    /// The id of the feature labelled `name` (exact match), if exactly one has it.
    public func id(named name: String) -> String? {
        let hits = byID.values.filter { $0.name == name }
        return hits.count == 1 ? hits[0].id : nil
    }

    public var isEmpty: Bool { byID.isEmpty }

    /// Reads a labels file: `{"features": [{"id": "12", "name": ..., "max_activation": ...}, ...]}`.
    /// Integer ids are accepted for latents.
    public static func load(path: String) throws -> FeatureLabels {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FeatureError.missingFile(path: path, what: "labels file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw FeatureError.badJSON(path: path, reason: error.localizedDescription)
        }
        guard let top = object as? [String: Any], let list = top["features"] as? [[String: Any]] else {
            throw FeatureError.badLabels(path: path, reason: "expected {\"features\": [...]} with one object per feature")
        }
        var labels: [FeatureLabel] = []
        for (n, entry) in list.enumerated() {
            let keys = JSONKeys(entry, path: path)
            let id: String
            if let s = entry["id"] as? String { id = s } else if let i = keys.rawInt("id") { id = String(i) } else {
                throw FeatureError.badLabels(path: path, reason: "features[\(n)]: 'id' must be a string or an integer")
            }
            let max = try keys.double("max_activation").map(Float.init)
            if let max, !max.isFinite {
                throw FeatureError.badLabels(path: path, reason: "features[\(n)]: max_activation is not finite")
            }
            labels.append(FeatureLabel(id: id, name: try keys.string("name"), description: try keys.string("description"),
                                       maxActivation: max, topExamples: entry["top_examples"] as? [String]))
        }
        return FeatureLabels(labels)
    }

    /// Writes the labels file, ids sorted (numerically when all are numbers) so files diff cleanly.
    public func write(to path: String) throws {
        let sorted = byID.values.sorted { a, b in
            if let x = Int(a.id), let y = Int(b.id) { return x < y }
            return a.id < b.id
        }
        let features: [[String: Any]] = sorted.map { l in
            var o: [String: Any] = ["id": l.id]
            if let v = l.name { o["name"] = v }
            if let v = l.description { o["description"] = v }
            if let v = l.maxActivation { o["max_activation"] = Double(v) }
            if let v = l.topExamples { o["top_examples"] = v }
            return o
        }
        let data = try JSONSerialization.data(withJSONObject: ["features": features], options: [.sortedKeys, .prettyPrinted])
        try data.write(to: URL(fileURLWithPath: path))
    }
}
