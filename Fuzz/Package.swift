// swift-tools-version: 6.0
// libFuzzer entry points for Probity's readers, one executable per target (docs/FUZZING.md).
// A package of its own so the main build never links libFuzzer; scripts/fuzz builds it with
// -sanitize=fuzzer,address (applied to Probity's modules too, for coverage and ASan checks).
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, whatever the checkout is called.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent()
let probity = root.lastPathComponent.lowercased()

let targets = ["gguf", "control-vector", "lora", "safetensors", "sae-config", "pack", "labels", "rules", "suite",
               "chat-messages", "report", "tokenizer-bpe", "tokenizer-spm", "npy"]

let package = Package(
    name: "ProbityFuzz",
    dependencies: [.package(path: "..")],
    targets: [.target(name: "FuzzMain")] + targets.map { name in
        .executableTarget(name: "fuzz-\(name)",
                          dependencies: ["FuzzMain", .product(name: "ProbityFuzzing", package: probity)],
                          path: "Sources/fuzz-\(name)")
    }
)
