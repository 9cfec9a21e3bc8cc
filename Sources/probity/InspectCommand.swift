// `probity inspect [MODEL] [--json]`: what a GGUF or safetensors file holds, without running it.
// The JSON fields are documented in docs/inspect.md.

import ArgumentParser
import Foundation
import ProbityFormats
import ProbityLM

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model file's format, hyperparameters, tokenizer and tensors.",
        discussion: """
            MODEL is 'default' (the default model in the cache) or a path to a .gguf or .safetensors file. \
            --json prints one object with sorted keys (fields in docs/inspect.md).
            """)

    @Argument(help: "'default' or a path to a .gguf or .safetensors file.")
    var model: String = "default"

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        let start = ContinuousClock.now
        let path = try ModelLocator.resolve(model)
        let report: [String: Any]
        if path.hasSuffix(".safetensors") {
            report = InspectReport.safetensors(try SafeTensorsFile(path: path))
        } else {
            report = try InspectReport.gguf(try GGUFFile(path: path))
        }
        let elapsed = start.duration(to: .now)
        var full = report
        full["inspect_ms"] = (elapsed / .microseconds(1)).rounded() / 1000
        if json {
            let data = try JSONSerialization.data(withJSONObject: full, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(InspectReport.text(full), terminator: "")
        }
    }
}

/// The inspect report as a JSON-ready dictionary, and its text rendering.
enum InspectReport {
    static let schemaVersion = 1

    static func gguf(_ f: GGUFFile) throws -> [String: Any] {
        let arch = try f.optionalString(GGUFKey.architecture)
        var r: [String: Any] = [
            "schema_version": schemaVersion, "format": "gguf", "file": f.path, "file_size": f.fileSize,
            "gguf_version": Int(f.version), "alignment": f.alignment, "data_offset": f.dataOffset,
            "architecture": arch ?? NSNull(), "name": try f.optionalString(GGUFKey.name) ?? NSNull(),
        ]
        let tokens = f.value(GGUFKey.tokens)?.stringArray
        if let arch {
            let dModel = try f.optionalInt(GGUFKey.embeddingLength(arch: arch))
            let heads = try f.optionalInt(GGUFKey.headCount(arch: arch))
            var headDim = try f.optionalInt(GGUFKey.keyLength(arch: arch))
            if headDim == nil, let dModel, let heads, heads > 0 { headDim = dModel / heads }
            let hp: [String: Any?] = [
                "block_count": try f.optionalInt(GGUFKey.blockCount(arch: arch)),
                "context_length": try f.optionalInt(GGUFKey.contextLength(arch: arch)),
                "embedding_length": dModel,
                "feed_forward_length": try f.optionalInt(GGUFKey.feedForwardLength(arch: arch)),
                "head_count": heads,
                "head_count_kv": try f.optionalInt(GGUFKey.headCountKV(arch: arch)),
                "head_dim": headDim,
                "rope_freq_base": number(f.value(GGUFKey.ropeFreqBase(arch: arch))),
                "rope_dimension_count": try f.optionalInt(GGUFKey.ropeDimensionCount(arch: arch)),
                "rms_norm_epsilon": number(f.value(GGUFKey.rmsEpsilon(arch: arch))),
                "vocab_size": try f.optionalInt(GGUFKey.vocabSize(arch: arch)) ?? tokens?.count,
            ]
            r["hyperparameters"] = hp.mapValues { $0 ?? NSNull() }
        }
        if let model = try f.optionalString(GGUFKey.tokenizerModel) {
            var special: [[String: Any]] = []
            for (role, key) in GGUFKey.specialTokenIDs {
                guard let id = try f.optionalInt(key) else { continue }
                let text: Any = tokens.flatMap { id >= 0 && id < $0.count ? $0[id] : nil } ?? NSNull()
                special.append(["role": role, "id": id, "text": text])
            }
            let t: [String: Any?] = [
                "model": model,
                "pre": try f.optionalString(GGUFKey.tokenizerPre),
                "vocab_size": tokens?.count,
                "merges_count": f.value(GGUFKey.merges)?.arrayValue?.count,
                "special_tokens": special,
                "add_bos": try f.optionalBool(GGUFKey.addBOS),
                "add_eos": try f.optionalBool(GGUFKey.addEOS),
                "chat_template": f.value(GGUFKey.chatTemplate) != nil,
            ]
            r["tokenizer"] = t.mapValues { $0 ?? NSNull() }
        }
        r["metadata"] = f.metadataKeys.map { key -> [String: Any] in
            let v = f.metadata[key] ?? .array([])
            var entry: [String: Any] = ["key": key, "type": v.typeName]
            if let a = v.arrayValue { entry["count"] = a.count } else { entry["value"] = scalar(v) }
            return entry
        }
        r["tensors"] = f.tensors.map { t -> [String: Any] in
            ["name": t.name, "type": t.type.name, "shape": t.shape, "offset": t.offset, "bytes": t.byteCount]
        }
        tensorTotals(f.tensors.map { ($0.type.name, $0.elementCount, $0.byteCount) }, into: &r)
        return r
    }

    static func safetensors(_ f: SafeTensorsFile) -> [String: Any] {
        var r: [String: Any] = [
            "schema_version": schemaVersion, "format": "safetensors", "file": f.path, "file_size": f.fileSize,
            "data_offset": f.dataOffset, "metadata": f.metadata,
        ]
        r["tensors"] = f.tensors.map { t -> [String: Any] in
            ["name": t.name, "type": t.dtype.rawValue, "shape": t.shape, "offset": t.dataRange.lowerBound, "bytes": t.byteCount]
        }
        tensorTotals(f.tensors.map { ($0.dtype.rawValue, $0.elementCount, $0.byteCount) }, into: &r)
        return r
    }

    static func tensorTotals(_ tensors: [(type: String, elements: Int, bytes: Int)], into r: inout [String: Any]) {
        var byType: [String: (count: Int, elements: Int, bytes: Int)] = [:]
        for t in tensors {
            let old = byType[t.type] ?? (0, 0, 0)
            byType[t.type] = (old.count + 1, old.elements + t.elements, old.bytes + t.bytes)
        }
        r["tensor_types"] = byType.mapValues { ["count": $0.count, "elements": $0.elements, "bytes": $0.bytes] }
        r["tensor_count"] = tensors.count
        r["parameter_count"] = tensors.reduce(0) { $0 + $1.elements }
        r["tensor_bytes"] = tensors.reduce(0) { $0 + $1.bytes }
    }

    /// A float32 as the short decimal it was written as (1e-05, not 9.99999974738e-06).
    static func number(_ v: GGUFValue?) -> Double? {
        if case let .float32(f)? = v { return Double("\(f)") }
        return v?.doubleValue
    }

    static func scalar(_ v: GGUFValue) -> Any {
        switch v {
        case let .string(s): return s
        case let .bool(b): return b
        case .float32, .float64: return number(v) ?? NSNull()
        case let .uint64(u): return u
        default: return v.intValue ?? NSNull()
        }
    }

    // MARK: Text

    static func text(_ r: [String: Any]) -> String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        func row(_ label: String, _ value: Any?) {
            line("  " + label.padding(toLength: 22, withPad: " ", startingAt: 0) + show(value))
        }
        let size = r["file_size"] as? Int ?? 0
        line("file: \(r["file"] as? String ?? "")")
        line("size: \(grouped(size)) bytes (\(String(format: "%.1f", Double(size) / 1_048_576)) MiB)")
        if r["format"] as? String == "gguf" {
            line("format: GGUF v\(show(r["gguf_version"])), alignment \(show(r["alignment"])), data at offset \(show(r["data_offset"]))")
            line("architecture: \(show(r["architecture"]))" + ((r["name"] as? String).map { " (\($0))" } ?? ""))
            if let hp = r["hyperparameters"] as? [String: Any] {
                for (label, key) in [("blocks", "block_count"), ("context length", "context_length"),
                                     ("d_model", "embedding_length"), ("FFN", "feed_forward_length"),
                                     ("heads", "head_count"), ("KV heads", "head_count_kv"), ("head dim", "head_dim"),
                                     ("rope base", "rope_freq_base"), ("rope dims", "rope_dimension_count"),
                                     ("rms eps", "rms_norm_epsilon"), ("vocab size", "vocab_size")] {
                    row(label, hp[key])
                }
            }
            if let t = r["tokenizer"] as? [String: Any] {
                line("tokenizer: \(show(t["model"])), pre-tokenizer \(show(t["pre"]))")
                row("vocab size", t["vocab_size"])
                row("merges", t["merges_count"])
                for s in t["special_tokens"] as? [[String: Any]] ?? [] {
                    row("\(show(s["role"])) token", "\(show(s["id"])) \(quoted(s["text"]))")
                }
                row("add_bos", t["add_bos"])
                row("add_eos", t["add_eos"])
                row("chat template", (t["chat_template"] as? Bool) == true ? "yes" : "no")
            }
            let meta = r["metadata"] as? [[String: Any]] ?? []
            line("metadata: \(meta.count) keys")
            for m in meta {
                let value = m["count"].map { "\(show(m["type"])) (\(show($0)))" } ?? quoted(m["value"])
                line("  " + show(m["key"]).padding(toLength: 42, withPad: " ", startingAt: 0) + value)
            }
        } else {
            line("format: safetensors, data at offset \(show(r["data_offset"]))")
            let meta = r["metadata"] as? [String: String] ?? [:]
            line("metadata: \(meta.count) keys")
            for k in meta.keys.sorted() { line("  \(k) = \(quoted(meta[k]))") }
        }
        let tensors = r["tensors"] as? [[String: Any]] ?? []
        line("tensors: \(tensors.count)")
        let nameWidth = max(4, tensors.map { show($0["name"]).count }.max() ?? 0)
        line("  " + "name".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  type     shape               bytes")
        for t in tensors {
            let shape = "[" + ((t["shape"] as? [Int]) ?? []).map(String.init).joined(separator: ", ") + "]"
            line("  " + show(t["name"]).padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                 + show(t["type"]).padding(toLength: 8, withPad: " ", startingAt: 0) + " "
                 + shape.padding(toLength: 18, withPad: " ", startingAt: 0) + " " + leftPad(grouped(t["bytes"] as? Int ?? 0), 12))
        }
        line("by type:")
        let types = r["tensor_types"] as? [String: [String: Int]] ?? [:]
        for name in types.keys.sorted() {
            let t = types[name] ?? [:]
            line("  " + name.padding(toLength: 8, withPad: " ", startingAt: 0) + leftPad("\(t["count"] ?? 0)", 5) + " tensors "
                 + leftPad(grouped(t["elements"] ?? 0), 14) + " parameters " + leftPad(grouped(t["bytes"] ?? 0), 14) + " bytes")
        }
        line("parameters: \(grouped(r["parameter_count"] as? Int ?? 0))")
        line("inspect time: \(show(r["inspect_ms"])) ms")
        return out
    }

    static func show(_ v: Any?) -> String {
        switch v {
        case nil, is NSNull: return "-"
        case let b as Bool: return b ? "true" : "false"
        case let d as Double: return d == d.rounded() && abs(d) < 1e15 ? "\(Int(d))" : "\(d)"
        case let s as String: return s
        default: return v.map { "\($0)" } ?? "-"
        }
    }

    /// Strings quoted with escapes, so tokens like "\n" are visible; other values as `show`.
    static func quoted(_ v: Any?) -> String {
        guard let s = v as? String else { return show(v) }
        let escaped = s.unicodeScalars.map { $0.escaped(asASCII: false) }.joined()
        return escaped.count > 60 ? "\"\(escaped.prefix(60))…\" (\(s.utf8.count) bytes)" : "\"\(escaped)\""
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func leftPad(_ s: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - s.count)) + s
    }
}
