// `probity audit --shard auto`: the shard from the job system's environment (docs/audits.md,
// "Shards across machines"), said on stderr with the variables it came from.

import Foundation
import ProbityAudit

extension AuditCommand {
    /// The shard `ShardEnvironment` resolves from `environment`, announced on stderr.
    static func shardFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (index: Int, count: Int) {
        let shard = try ShardEnvironment.resolve(environment)
        FileHandle.standardError.write(Data("audit: --shard auto: shard \(shard.index)/\(shard.count) from \(shard.source)\n".utf8))
        return (shard.index, shard.count)
    }
}
