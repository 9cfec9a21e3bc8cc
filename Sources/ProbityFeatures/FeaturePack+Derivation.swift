// What derived a pack: pack.json `provenance.items = {"scheme": "probity-item-v1", "sha256": [...]}`,
// the sorted, unique ItemFingerprint of every item (prompt, or exchange with its reply) that derived
// or calibrated it. `probity eval` refuses to score an item whose fingerprint a watched pack records.

import Foundation

/// The fingerprints of the items that derived a pack (any kind), as its manifest records them.
public struct DerivationItems: Sendable, Equatable {
    /// `ItemFingerprint.of` of each item, lowercase hex.
    public var fingerprints: Set<String>

    public init(fingerprints: some Sequence<String>) {
        self.fingerprints = Set(fingerprints)
    }

    /// The provenance key they are recorded under.
    public static let key = "items"

    /// The JSON object recorded under `provenance.items`: the scheme and the sorted fingerprints.
    public var jsonObject: [String: Any] {
        ["scheme": ItemFingerprint.scheme, "sha256": fingerprints.sorted()]
    }

    /// Reads `provenance.items` strictly: an object with exactly `scheme` (the one this build knows)
    /// and `sha256` (an array of unique, sorted 64-digit lowercase hex strings). `path` names the
    /// manifest in errors.
    public static func parse(_ value: Any, path: String) throws -> DerivationItems {
        let key = "provenance.\(Self.key)"
        func bad(_ k: String, _ expected: String, _ found: String) -> FeatureError {
            .badManifest(path: path, key: k, expected: expected, found: found)
        }
        guard let o = value as? [String: Any] else { throw bad(key, "an object {scheme, sha256}", describe(value)) }
        if let extra = o.keys.sorted().first(where: { $0 != "scheme" && $0 != "sha256" }) {
            throw bad(key, "only the keys scheme and sha256", "'\(extra)'")
        }
        guard let scheme = o["scheme"] as? String else { throw bad(key + ".scheme", "a string", o["scheme"].map(describe) ?? "nothing") }
        guard scheme == ItemFingerprint.scheme else { throw bad(key + ".scheme", "'\(ItemFingerprint.scheme)'", "'\(scheme)'") }
        guard let list = o["sha256"] as? [Any] else { throw bad(key + ".sha256", "an array of fingerprints", o["sha256"].map(describe) ?? "nothing") }
        var previous: String?
        for (i, entry) in list.enumerated() {
            guard let s = entry as? String, s.count == 64, s.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw bad("\(key).sha256[\(i)]", "64 lowercase hex digits", describe(entry))
            }
            if let p = previous, p >= s {
                throw bad("\(key).sha256[\(i)]", "fingerprints sorted and unique", "'\(s)' after '\(p)'")
            }
            previous = s
        }
        return DerivationItems(fingerprints: list.compactMap { $0 as? String })
    }

    private static func describe(_ value: Any) -> String {
        switch value {
        case let s as String: return "'\(s.prefix(80))'"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        default: return "\(value)"
        }
    }
}

extension FeaturePack {
    /// The items that derived this pack, when its manifest records them (nil: it does not, or it
    /// is a bare SAELens directory).
    public var derivationItems: DerivationItems? { manifest?.derivationItems }
}
