// The result of `probity diff` (contract: docs/diff.schema.json): the models, the inputs, and per
// pack the features whose statistics changed most, with where they changed. Codable value types
// with a CodingKeys case per schema key; written with sorted keys.

import Foundation
import ProbityFeatures

public struct DiffReport: Codable, Sendable, Equatable {
    public static let schemaVersion = 1

    public var schemaVersion: Int
    public var probityVersion: String
    /// The model without adapters, and with them (`adapters` lists them).
    public var base: AuditReport.Model
    public var adapted: AuditReport.Model
    public var inputs: [Input]
    /// Positions (non-special tokens) compared, over all inputs.
    public var positions: Int
    public var window: Int
    public var chatFormat: String
    /// What the rows are ordered by (FeatureDiffRanking).
    public var rankedBy: String
    public var packs: [PackDiff]

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case probityVersion = "probity_version"
        case base, adapted, inputs, positions, window
        case chatFormat = "chat_format"
        case rankedBy = "ranked_by"
        case packs
    }

    /// One input file.
    public struct Input: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        /// sharegpt, chitchat, text, jsonl (corpora) or chat (conversations with responses).
        public var format: String
        /// Documents (or chat items) read from it.
        public var documents: Int
        public var positions: Int
    }

    /// One pack's ranked features.
    public struct PackDiff: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        /// sae, directions or probe.
        public var kind: String
        public var hook: String
        /// Features the pack holds, and how many of them differ at any position.
        public var features: Int
        public var changed: Int
        public var rows: [Row]
    }

    /// One feature's change (FeatureChange); effects may be "inf" or "-inf".
    public struct Row: Codable, Sendable, Equatable {
        public var rank: Int
        /// A latent index, or a direction's or probe's name.
        public var feature: String
        /// Its label's name, when it has one.
        public var name: String?
        public var score: Effect
        public var meanBase: Double
        public var meanAdapted: Double
        public var meanChange: Double
        public var meanEffect: Effect
        public var frequencyBase: Double
        public var frequencyAdapted: Double
        public var frequencyEffect: Double
        public var pairedEffect: Effect
        public var maxBase: Float
        public var maxAdapted: Float
        public var largestIncrease: Float
        public var largestDecrease: Float
        public var changedPositions: Int
        /// Where it rose most (change = adapted − base) and fell most (change = base − adapted),
        /// strongest first, one per window.
        public var increases: [Context]
        public var decreases: [Context]

        enum CodingKeys: String, CodingKey {
            case rank, feature, name, score
            case meanBase = "mean_base"
            case meanAdapted = "mean_adapted"
            case meanChange = "mean_change"
            case meanEffect = "mean_effect"
            case frequencyBase = "frequency_base"
            case frequencyAdapted = "frequency_adapted"
            case frequencyEffect = "frequency_effect"
            case pairedEffect = "paired_effect"
            case maxBase = "max_base"
            case maxAdapted = "max_adapted"
            case largestIncrease = "largest_increase"
            case largestDecrease = "largest_decrease"
            case changedPositions = "changed_positions"
            case increases, decreases
        }
    }

    /// Tokens around a position where a feature changed, with the size of the change at each
    /// token (0 where it changed the other way, did not change, or the token is special).
    public struct Context: Codable, Sendable, Equatable {
        public var source: String
        public var document: Int
        public var tokens: [String]
        public var changes: [Float]
        public var peakIndex: Int
        public var peakChange: Float

        enum CodingKeys: String, CodingKey {
            case source, document, tokens, changes
            case peakIndex = "peak_index"
            case peakChange = "peak_change"
        }
    }

    /// A number that may be infinite, written as "inf" / "-inf" (JSON has no infinities).
    public struct Effect: Codable, Sendable, Equatable {
        public var value: Double

        public init(_ value: Double) { self.value = value }

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                switch s {
                case "inf": value = .infinity
                case "-inf": value = -.infinity
                default: throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a number, \"inf\" or \"-inf\", found \"\(s)\"")
                }
            } else {
                value = try c.decode(Double.self)
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            if value.isFinite { try c.encode(value) } else { try c.encode(value > 0 ? "inf" : "-inf") }
        }
    }

    /// The JSON text: sorted keys, indented, with a final newline.
    public func json() throws -> Data { try sortedJSON(self) }
}

extension DiffReport.PackDiff {
    /// The `top` features of `statistics` by `rankBy`, with their contexts.
    init(pack: FeaturePack, statistics: FeatureDiffStatistics, rankBy: FeatureDiffRanking, top: Int) {
        let all = statistics.ranked(by: rankBy)
        let rows = all.prefix(top).enumerated().map { rank, c in
            let id = FeatureColumns.id(pack, c.index)
            func contexts(_ s: FeatureStatistics) -> [DiffReport.Context] {
                s.contexts(c.index).map {
                    DiffReport.Context(source: $0.source, document: $0.document, tokens: $0.tokens, changes: $0.activations,
                                       peakIndex: $0.peakIndex, peakChange: $0.peakActivation)
                }
            }
            return DiffReport.Row(
                rank: rank + 1, feature: id.id, name: id.name, score: .init(c.score),
                meanBase: c.meanBase, meanAdapted: c.meanAdapted, meanChange: c.meanChange, meanEffect: .init(c.meanEffect),
                frequencyBase: c.frequencyBase, frequencyAdapted: c.frequencyAdapted, frequencyEffect: c.frequencyEffect,
                pairedEffect: .init(c.pairedEffect), maxBase: c.maxBase, maxAdapted: c.maxAdapted,
                largestIncrease: c.largestIncrease, largestDecrease: c.largestDecrease, changedPositions: c.changedPositions,
                increases: contexts(statistics.increase), decreases: contexts(statistics.decrease))
        }
        self.init(name: pack.name, path: pack.path, kind: pack.kind.rawValue, hook: pack.hook.name,
                  features: statistics.count, changed: all.filter { $0.changedPositions > 0 }.count, rows: Array(rows))
    }
}
