// The Kubernetes manifests and the GitHub Actions workflow of docs/examples that run an audit across
// machines (docs/audits.md, "Shards across machines"): read with the project's YAML reader, their
// shards resolved as `--shard auto` resolves them, their own shell commands run with the real binary
// on a tiny suite, and shown verbatim in docs/audits.md.

import Foundation
import ProbityAudit
import ProbityRules
import Testing

@Suite(.serialized) struct ShardExamplesTests {
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

    /// Runs `script` with `shell` (`sh -c` or `bash -e -c`) in `dir`, with the built `probity` first
    /// on PATH, none of `--shard auto`'s variables but those in `environment`, and the test's model cache.
    static func shell(_ shell: [String], _ script: String, in dir: URL, environment: [String: String]) throws -> CLIResult {
        var env = ProcessInfo.processInfo.environment
        for name in ShardAutoCLITests.variables { env[name] = nil }
        for (k, v) in environment { env[k] = v }
        env["PATH"] = CLI.binary.deletingLastPathComponent().path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        return try CLI.execute(URL(fileURLWithPath: "/usr/bin/env"), shell + [script], environment: env, in: dir)
    }

    /// A working directory laid out as the examples expect (audits/default.yaml, reports/), with a
    /// three-case suite in place of the default one whose rule fires at high: every shard with a
    /// case exits 1, as a shard of a suite with findings does.
    static func workingDirectory() throws -> URL {
        let dir = try CLI.scratch()
        let audits = dir.appendingPathComponent("audits")
        try FileManager.default.createDirectory(at: audits, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("reports"), withIntermediateDirectories: true)
        _ = try ShardAutoCLITests.suite(audits, file: "default.yaml", severity: "high")
        return dir
    }

    /// The Indexed Job's and the merge Job's own shell commands, run as their pods run them: shards
    /// with findings succeed (more shards than cases included), a bad index fails with exit 2 (which
    /// the Job's podFailurePolicy turns into a failed Job), and the merge exits 1 on the findings.
    @Test func kubernetesCommandsRunTheShardsAndTheMergeGivesTheVerdict() throws {
        let job = try Self.load("audit-k8s-job.yaml"), merge = try Self.load("audit-k8s-merge.yaml")
        func script(_ job: YAMLNode) throws -> String {
            let command = try #require(try Self.container(job)["command"]).sequence().map { try $0.string() }
            #expect(command.count == 3 && command.first == "sh" && command.dropFirst().first == "-c", "\(command)")
            return try #require(command.last)
        }
        let completions = try #require(job["spec"]?["completions"]).int()
        var env = try Self.env(try Self.container(job))
        env["PROBITY_CACHE"] = nil  // the image's cache; the test's own holds the model
        let dir = try Self.workingDirectory()
        for index in 0..<completions {
            env[ShardEnvironment.kubernetesIndexVariable] = String(index)
            let r = try Self.shell(["sh", "-c"], try script(job), in: dir, environment: env)
            #expect(r.status == 0, "index \(index): \(r.stderr)")
            #expect(r.stdout.contains(index < 3 ? "FAIL" : "PASS"), "index \(index): \(r.stdout)")
            #expect(FileManager.default.fileExists(atPath: dir.path + "/reports/default.shard\(index + 1)of\(completions).json"))
        }
        env[ShardEnvironment.kubernetesIndexVariable] = String(completions)
        let bad = try Self.shell(["sh", "-c"], try script(job), in: dir, environment: env)
        #expect(bad.status == 2, "\(bad.stderr)")
        let codes = try #require(job["spec"]?["podFailurePolicy"]?["rules"]?.sequence().first?["onExitCodes"]?["values"]).sequence()
        #expect(try codes.map { try $0.int() } == [2])

        let m = try Self.shell(["sh", "-c"], try script(merge), in: dir, environment: [:])
        #expect(m.status == 1, "\(m.stderr)")
        let merged = try AuditReport.read(path: dir.path + "/reports/default.json")
        #expect(merged.cases.map(\.id) == ["hello", "capital", "praise"])
        #expect(merged.summary.findings == 3)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/reports/default.junit.xml"))
    }

    /// The workflow's run steps, run as GitHub runs them (`bash -e`) with each matrix job's
    /// environment: shards with findings succeed and write the file the upload step names, a bad
    /// index fails the step, and the merge over the downloaded reports exits 1 on the findings.
    @Test func githubStepsRunTheShardsAndTheMergeGivesTheVerdict() throws {
        let jobs = try #require(try Self.load("audit-matrix.yml")["jobs"])
        let shard = try #require(jobs["shard"]), mergeJob = try #require(jobs["merge"])
        let values = try #require(shard["strategy"]?["matrix"]?["shard"]).sequence().map { try $0.int() }
        func run(_ job: YAMLNode, containing text: String) throws -> String {
            let runs = try #require(job["steps"]).sequence().compactMap { step in try step["run"].map { try $0.string() } }
            return try #require(runs.first { $0.contains(text) })
        }
        let audit = try run(shard, containing: "--shard auto"), mergeRun = try run(mergeJob, containing: "report merge")
        let shardSteps = try #require(shard["steps"]).sequence()
        let upload = try #require(try shardSteps.first { try $0["uses"]?.string().hasPrefix("actions/upload-artifact@") == true })
        let uploadPath = try Self.string(upload["with"]?["path"], "with.path")

        // Each runner checks out and builds anew; the built binary stands in for .build/release/probity.
        let dir = try Self.workingDirectory()
        let release = dir.appendingPathComponent(".build/release")
        try FileManager.default.createDirectory(at: release, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: release.appendingPathComponent("probity"), withDestinationURL: CLI.binary)
        let downloaded = try Self.workingDirectory()
        try FileManager.default.createDirectory(at: downloaded.appendingPathComponent(".build"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: downloaded.appendingPathComponent(".build/release"), withDestinationURL: release)
        for value in values {
            let env = ["PROBITY_SHARD_INDEX": String(value), "PROBITY_SHARD_COUNT": String(values.count)]
            let r = try Self.shell(["bash", "-e", "-c"], audit, in: dir, environment: env)
            #expect(r.status == 0, "shard \(value): \(r.stderr)")
            let path = uploadPath.replacingOccurrences(of: "${{ matrix.shard }}", with: String(value))
                .replacingOccurrences(of: "${{ strategy.job-total }}", with: String(values.count))
            let report = dir.appendingPathComponent(path)
            #expect(FileManager.default.fileExists(atPath: report.path), "\(path)")
            // download-artifact with merge-multiple puts every shard's file into reports/.
            try FileManager.default.copyItem(at: report, to: downloaded.appendingPathComponent("reports/" + report.lastPathComponent))
        }
        let bad = try Self.shell(["bash", "-e", "-c"], audit, in: dir,
                                 environment: ["PROBITY_SHARD_INDEX": "0", "PROBITY_SHARD_COUNT": String(values.count)])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--shard auto: PROBITY_SHARD_INDEX: expected 1 to \(values.count)"), "\(bad.stderr)")

        let m = try Self.shell(["bash", "-e", "-c"], mergeRun, in: downloaded, environment: [:])
        #expect(m.status == 1, "\(m.stderr)")
        let merged = try AuditReport.read(path: downloaded.path + "/reports/default.json")
        #expect(merged.cases.map(\.id) == ["hello", "capital", "praise"])
        #expect(merged.summary.findings == 3)
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
