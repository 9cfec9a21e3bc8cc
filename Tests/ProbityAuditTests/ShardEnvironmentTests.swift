// `--shard auto`'s reading of the environment (docs/audits.md, "Shards across machines"): each
// source, their precedence, Kubernetes' 0-based index, and one error per bad or missing value.

import ProbityAudit
import Testing

@Suite struct ShardEnvironmentTests {
    typealias E = ShardEnvironment

    static func error(_ env: [String: String]) -> AuditError? {
        do {
            _ = try E.resolve(env)
            return nil
        } catch {
            return error
        }
    }

    @Test func probityVariablesAreOneBased() throws {
        let r = try E.resolve(["PROBITY_SHARD_INDEX": "2", "PROBITY_SHARD_COUNT": "4", "HOME": "/"])
        #expect(r == .init(index: 2, count: 4, source: "PROBITY_SHARD_INDEX=2 and PROBITY_SHARD_COUNT=4"))
        #expect(try E.resolve(["PROBITY_SHARD_INDEX": "1", "PROBITY_SHARD_COUNT": "1"]).index == 1)
        #expect(try E.resolve(["PROBITY_SHARD_INDEX": "4", "PROBITY_SHARD_COUNT": "4"]).index == 4)
        // Leading zeros are still the number.
        #expect(try E.resolve(["PROBITY_SHARD_INDEX": "03", "PROBITY_SHARD_COUNT": "04"]).index == 3)
    }

    @Test func kubernetesIndexIsZeroBased() throws {
        let r = try E.resolve(["JOB_COMPLETION_INDEX": "0", "PROBITY_SHARD_COUNT": "3"])
        #expect(r == .init(index: 1, count: 3, source: "JOB_COMPLETION_INDEX=0 (0-based) and PROBITY_SHARD_COUNT=3"))
        #expect(try E.resolve(["JOB_COMPLETION_INDEX": "2", "PROBITY_SHARD_COUNT": "3"]).index == 3)
        // Every completion index of an N-completion Job is one shard, and together they are all N.
        let shards = try (0..<5).map { try E.resolve(["JOB_COMPLETION_INDEX": "\($0)", "PROBITY_SHARD_COUNT": "5"]) }
        #expect(shards.map(\.index) == [1, 2, 3, 4, 5])
        #expect(Set(shards.map(\.count)) == [5])
    }

    @Test func probityIndexComesBeforeKubernetes() throws {
        let r = try E.resolve(["PROBITY_SHARD_INDEX": "1", "JOB_COMPLETION_INDEX": "1", "PROBITY_SHARD_COUNT": "2"])
        #expect(r.index == 1 && r.count == 2)
        #expect(r.source == "PROBITY_SHARD_INDEX=1 and PROBITY_SHARD_COUNT=2 (JOB_COMPLETION_INDEX=1 ignored: PROBITY_SHARD_INDEX comes first)")
        // A bad Probity index is an error even when Kubernetes' would do: no silent fallback.
        #expect(Self.error(["PROBITY_SHARD_INDEX": "x", "JOB_COMPLETION_INDEX": "0", "PROBITY_SHARD_COUNT": "2"])
            == .badShardEnvironment(variable: "PROBITY_SHARD_INDEX", expected: "a whole number (the shard's index, 1-based)", found: "'x'"))
    }

    @Test func noIndexNamesBothVariables() {
        let e = Self.error(["PROBITY_SHARD_COUNT": "2"])
        #expect(e == .badShardEnvironment(
            variable: "PROBITY_SHARD_INDEX or JOB_COMPLETION_INDEX",
            expected: "the shard's index in PROBITY_SHARD_INDEX (1-based) or JOB_COMPLETION_INDEX (0-based, set by Kubernetes Indexed Jobs)",
            found: "neither set"))
        #expect(Self.error([:]) == e)
        #expect(e?.description.hasPrefix("shard from the environment: PROBITY_SHARD_INDEX or JOB_COMPLETION_INDEX: expected") == true)
    }

    @Test func missingCountIsAnError() {
        #expect(Self.error(["PROBITY_SHARD_INDEX": "1"]) == .badShardEnvironment(
            variable: "PROBITY_SHARD_COUNT", expected: "the number of shards, a whole number ≥ 1, next to PROBITY_SHARD_INDEX",
            found: "nothing (unset)"))
        let k8s = Self.error(["JOB_COMPLETION_INDEX": "0"])
        #expect(k8s == .badShardEnvironment(
            variable: "PROBITY_SHARD_COUNT",
            expected: "the number of shards, a whole number ≥ 1, next to JOB_COMPLETION_INDEX"
                + " (Kubernetes does not pass a Job's completions to its pods: set it to the same number)",
            found: "nothing (unset)"))
    }

    @Test func countMustBeAPositiveWholeNumber() {
        for bad in ["0", "", "two", "-2", "+2", " 2", "2.0", "99999999999999999999999"] {
            #expect(Self.error(["PROBITY_SHARD_INDEX": "1", "PROBITY_SHARD_COUNT": bad]) == .badShardEnvironment(
                variable: "PROBITY_SHARD_COUNT", expected: "the number of shards, a whole number ≥ 1", found: "'\(bad)'"), "\(bad)")
        }
    }

    @Test func nonNumericIndexIsAnError() {
        for bad in ["", "one", "-1", "1/2", "1 "] {
            #expect(Self.error(["PROBITY_SHARD_INDEX": bad, "PROBITY_SHARD_COUNT": "2"]) == .badShardEnvironment(
                variable: "PROBITY_SHARD_INDEX", expected: "a whole number (the shard's index, 1-based)", found: "'\(bad)'"), "\(bad)")
            #expect(Self.error(["JOB_COMPLETION_INDEX": bad, "PROBITY_SHARD_COUNT": "2"]) == .badShardEnvironment(
                variable: "JOB_COMPLETION_INDEX", expected: "a whole number (the shard's index, 0-based)", found: "'\(bad)'"), "\(bad)")
        }
    }

    @Test func indexOutOfRangeSaysTheRange() {
        #expect(Self.error(["PROBITY_SHARD_INDEX": "0", "PROBITY_SHARD_COUNT": "3"]) == .badShardEnvironment(
            variable: "PROBITY_SHARD_INDEX", expected: "1 to 3 (1-based, with PROBITY_SHARD_COUNT=3)", found: "'0'"))
        #expect(Self.error(["PROBITY_SHARD_INDEX": "4", "PROBITY_SHARD_COUNT": "3"]) == .badShardEnvironment(
            variable: "PROBITY_SHARD_INDEX", expected: "1 to 3 (1-based, with PROBITY_SHARD_COUNT=3)", found: "'4'"))
        // Kubernetes' index N of N completions is one past the end: a 1-based value given where a
        // 0-based one belongs.
        let e = Self.error(["JOB_COMPLETION_INDEX": "3", "PROBITY_SHARD_COUNT": "3"])
        #expect(e == .badShardEnvironment(
            variable: "JOB_COMPLETION_INDEX", expected: "0 to 2 (0-based, with PROBITY_SHARD_COUNT=3)", found: "'3'"))
        #expect(e?.description == "shard from the environment: JOB_COMPLETION_INDEX: expected 0 to 2 (0-based, with PROBITY_SHARD_COUNT=3), found '3'")
    }
}
