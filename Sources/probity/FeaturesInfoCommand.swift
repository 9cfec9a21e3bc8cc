// `probity features info PACK`: what a feature pack holds, where it attaches, and where it came from.

import ArgumentParser
import Foundation
import ProbityFeatures

struct FeaturesInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe a feature pack.")

    @Argument(help: "The pack directory (pack.json, or a SAELens directory).")
    var pack: String

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        let p = try FeaturePack.load(path: pack)
        var o: [String: Any] = ["name": p.name, "kind": p.kind.rawValue, "hook": p.hook.name, "d_in": p.width,
                                "labels": p.labels.count, "manifest": p.manifest != nil]
        if let m = p.manifest {
            var model: [String: Any] = [:]
            if let n = m.modelName { model["name"] = n }
            if let s = m.modelSHA256 { model["gguf_sha256"] = s }
            o["model"] = model
            if let prov = m.provenanceJSON, let obj = try? JSONSerialization.jsonObject(with: Data(prov.utf8)) { o["provenance"] = obj }
        }
        if let sae = p.sae {
            o["d_sae"] = sae.dSAE
            o["architecture"] = sae.config.architecture.description
            o["normalize_activations"] = sae.config.normalization.description
            o["apply_b_dec_to_input"] = sae.config.applyBDecToInput
            if let m = sae.config.modelName { o["sae_model_name"] = m }
            if sae.config.legacyLayout { o["config_layout"] = "pre-v6 (upgraded)" }
        }
        if !p.directions.isEmpty {
            o["directions"] = p.directions.map { d -> [String: Any] in
                ["name": d.name, "hook": d.point.name, "norm": Double(d.vector.map { Double($0 * $0) }.reduce(0, +).squareRoot())]
            }
        }
        if let probe = p.probe {
            o["probe"] = ["name": probe.name, "hook": probe.point.name, "norm": probe.norm, "bias": Double(probe.bias)] as [String: Any]
        }
        if json {
            print(try jsonString(o))
            return
        }
        print("pack      \(p.name) (\(p.kind.rawValue)\(p.manifest == nil ? ", bare SAELens directory" : ""))")
        print("hook      \(p.hook.name)")
        print("d_in      \(p.width)")
        if let sae = p.sae {
            print("d_sae     \(sae.dSAE)")
            print("arch      \(sae.config.architecture)")
            print("norm      \(sae.config.normalization)")
            print("b_dec in  \(sae.config.applyBDecToInput)")
        }
        for d in p.directions {
            let norm = d.vector.map { Double($0 * $0) }.reduce(0, +).squareRoot()
            print("direction \(d.name) at \(d.point.name), norm \(String(format: "%.4f", norm))")
        }
        if let probe = p.probe {
            print("probe     \(probe.name) at \(probe.point.name), ‖w‖ \(String(format: "%.4f", probe.norm)), bias \(String(format: "%.4f", probe.bias)); value w·x + b")
        }
        if let m = p.manifest {
            print("model     \(m.modelName ?? "-") \(m.modelSHA256.map { "sha256 " + $0 } ?? "")")
            // The derivation items are hundreds of digests: the text view gives their count.
            if var prov = m.provenanceJSON.flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) {
                prov[DerivationItems.key] = nil
                print("source    \(try jsonString(prov))")
            } else if let prov = m.provenanceJSON {
                print("source    \(prov)")
            }
            print("derived   " + (m.derivationItems.map { "from \($0.fingerprints.count) items (\(ItemFingerprint.scheme); provenance.items)" }
                                  ?? "from items it does not record"))
        }
        print("labels    \(p.labels.count)")
    }
}
