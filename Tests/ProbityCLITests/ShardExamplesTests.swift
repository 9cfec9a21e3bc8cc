// The Kubernetes manifests and the GitHub Actions workflow of docs/examples that run an audit across
// machines (docs/audits.md, "Shards across machines"): read with the project's YAML reader, their
// shards resolved as `--shard auto` resolves them, and shown verbatim in docs/audits.md.

import Foundation
import ProbityAudit
import ProbityRules
import Testing

@Suite struct ShardExamplesTests {
    static let examples = AuditCLITests.repo + "/docs/examples/"

    static func load(_ name: String) throws -> YAMLNode { try YAML.load(file: examples + name) }

    static func string(_ node: YAMLNode?, _ path: String) throws -> String {
        try #require(node, "\(path): missing").string()
    }

    /// The container's `env` list as a dictionary of literal values.
    static func env(_ container: YAMLNode) throws -> [String: String] {
        var env: [String: String] = [:]
        for item in try #require(container["env"]).sequence() {
            env[try string(item["name"], "env.name")] = try string(item["value"], "env.value")
        }
        return env
    }

    static func container(_ job: YAMLNode) throws -> YAMLNode {
        let containers = try #require(job["spec"]?["template"]?["spec"]?["containers"]).sequence()
        #expect(containers.count == 1)
        return try #require(containers.first)
    }

    /// The claim a Job's pods mount at `path`.
    static func claim(_ job: YAMLNode, mountedAt path: String) throws -> String? {
        let podSpec = try #require(job["spec"]?["template"]?["spec"])
        let mounts = try #require(try container(job)["volumeMounts"]).sequence()
        guard let mount = try mounts.first(where: { try string($0["mountPath"], "mountPath") == path }) else { return nil }
        let volumeName = try string(mount["name"], "volumeMounts.name")
        let volumes = try #require(podSpec["volumes"]).sequence()
        let volume = try volumes.first { try string($0["name"], "volumes.name") == volumeName }
        return try volume.map { try string($0["persistentVolumeClaim"]?["claimName"], "claimName") }
    }

    @Test func kubernetesIndexedJobRunsEveryShardOnceAndTheMergeReadsThem() throws {
        let job = try Self.load("audit-k8s-job.yaml")
        #expect(try Self.string(job["kind"], "kind") == "Job")
        let spec = try #require(job["spec"])
        #expect(try Self.string(spec["completionMode"], "completionMode") == "Indexed")
        let completions = try #require(spec["completions"]).int()
        #expect(completions > 1)
        #expect(try #require(spec["parallelism"]).int() == completions)
        #expect(try Self.string(spec["template"]?["spec"]?["restartPolicy"], "restartPolicy") == "Never")

        let audit = try Self.container(job)
        let command = try #require(audit["command"]).sequence().map { try $0.string() }.joined(separator: " ")
        #expect(command.contains("probity audit audits/default.yaml --shard auto"))
        // Each pod's environment as Kubernetes completes it: the shards are 1...completions, once each.
        let env = try Self.env(audit)
        let shards = try (0..<completions).map { index in
            var podEnv = env
            podEnv[ShardEnvironment.kubernetesIndexVariable] = String(index)
            return try ShardEnvironment.resolve(podEnv)
        }
        #expect(shards.map(\.index) == Array(1...completions))
        #expect(Set(shards.map(\.count)) == [completions])

        // The default report names (under the working directory's reports/) land on the claim the
        // merge Job reads, which globs this Job's shard count.
        let workingDir = try Self.string(audit["workingDir"], "workingDir")
        let claim = try #require(try Self.claim(job, mountedAt: workingDir + "/reports"))
        let pvc = try Self.load("audit-k8s-reports.yaml")
        #expect(try Self.string(pvc["kind"], "kind") == "PersistentVolumeClaim")
        #expect(try Self.string(pvc["metadata"]?["name"], "metadata.name") == claim)
        #expect(try #require(pvc["spec"]?["accessModes"]).sequence().map { try $0.string() } == ["ReadWriteMany"])

        let merge = try Self.load("audit-k8s-merge.yaml")
        let mergeContainer = try Self.container(merge)
        #expect(try Self.string(mergeContainer["workingDir"], "workingDir") == workingDir)
        #expect(try Self.claim(merge, mountedAt: workingDir + "/reports") == claim)
        let mergeCommand = try #require(mergeContainer["command"]).sequence().map { try $0.string() }.joined(separator: " ")
        #expect(mergeCommand.contains("probity report merge reports/default.shard*of\(completions).json --out reports/default.json"))
    }

    @Test func githubMatrixPassesEveryShardOnceAndTheLastJobMerges() throws {
        let workflow = try Self.load("audit-matrix.yml")
        let jobs = try #require(workflow["jobs"])
        let shard = try #require(jobs["shard"])
        let values = try #require(shard["strategy"]?["matrix"]?["shard"]).sequence().map { try $0.int() }
        #expect(values.count > 1)
        #expect(try #require(shard["strategy"]?["fail-fast"]).bool() == false)
        let env = try #require(shard["env"])
        #expect(try Self.string(env["PROBITY_SHARD_INDEX"], "env") == "${{ matrix.shard }}")
        #expect(try Self.string(env["PROBITY_SHARD_COUNT"], "env") == "${{ strategy.job-total }}")
        // Each matrix job's environment as GitHub fills it in: the shards are 1...N, once each.
        let shards = try values.map {
            try ShardEnvironment.resolve(["PROBITY_SHARD_INDEX": String($0), "PROBITY_SHARD_COUNT": String(values.count)])
        }
        #expect(shards.map(\.index) == Array(1...values.count))

        let steps = try #require(shard["steps"]).sequence()
        let runs = try steps.compactMap { step in try step["run"].map { try $0.string() } }
        #expect(runs.contains { $0.contains("probity audit audits/default.yaml --shard auto") })
        let upload = try #require(try steps.first { try $0["uses"]?.string().hasPrefix("actions/upload-artifact@") == true })
        #expect(try Self.string(upload["with"]?["path"], "with.path") == "reports/default.shard${{ matrix.shard }}of${{ strategy.job-total }}.json")

        let merge = try #require(jobs["merge"])
        #expect(try Self.string(merge["needs"], "needs") == "shard")
        let mergeSteps = try #require(merge["steps"]).sequence()
        let download = try #require(try mergeSteps.first { try $0["uses"]?.string().hasPrefix("actions/download-artifact@") == true })
        #expect(try Self.string(download["with"]?["pattern"], "with.pattern") == "audit-shard-*")
        let mergeRuns = try mergeSteps.compactMap { step in try step["run"].map { try $0.string() } }
        #expect(mergeRuns.contains { $0.contains("probity report merge reports/default.shard*of*.json --out reports/default.json") })
    }

    /// docs/audits.md shows each example file whole, so the docs and the tested files cannot drift.
    @Test func auditsDocShowsTheExamplesVerbatim() throws {
        let doc = try String(contentsOfFile: AuditCLITests.repo + "/docs/audits.md", encoding: .utf8)
        for name in ["audit-k8s-reports.yaml", "audit-k8s-job.yaml", "audit-k8s-merge.yaml", "audit-matrix.yml"] {
            let text = try String(contentsOfFile: Self.examples + name, encoding: .utf8)
            #expect(doc.contains("```yaml\n" + text + "```\n"), "docs/audits.md does not show docs/examples/\(name) as it is")
        }
    }
}
