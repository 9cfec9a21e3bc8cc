// swift-tools-version: 6.0
// Probity: run a language model on the CPU and watch and steer its features from the inside.
// Targets follow the layers in docs/DESIGN.md; dependencies point down only.
import PackageDescription

let package = Package(
    name: "Probity",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "probity", targets: ["probity"]),
        .library(name: "ProbityLM", targets: ["ProbityLM"]),
        // Every reader of untrusted files as a function of bytes: for the libFuzzer shims of the
        // separate Fuzz/ package and the replay test. Not a dependency of the probity executable.
        .library(name: "ProbityFuzzing", targets: ["ProbityFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // HTML pages from templates that escape every value they insert (reports and dashboards).
        .package(url: "https://github.com/hummingbird-project/swift-mustache", exact: "2.1.1"),
        // The HTTP server of `probity serve` (an OpenAI-compatible API), its graceful shutdown on
        // SIGINT/SIGTERM, its Prometheus metrics and its logging.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries from Debian (scripts/setup installs them).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),

        // Hot kernels with run-time CPU dispatch (AVX2/FMA/F16C or portable C) and the pool core.
        .target(name: "CKernels"),

        // Layers, bottom up.
        .target(name: "ProbityTensor", dependencies: ["COpenBLAS", "CKernels"]),
        .target(name: "ProbityFormats", dependencies: ["ProbityTensor"]),
        .target(name: "ProbityLM", dependencies: ["ProbityFormats", "ProbityTensor"]),
        .target(name: "ProbityFeatures", dependencies: ["CKernels", "ProbityLM", "ProbityFormats", "ProbityTensor"]),
        .target(name: "ProbityTraining", dependencies: ["ProbityFeatures", "ProbityLM", "ProbityFormats", "ProbityTensor"]),
        .target(name: "ProbityRules",
                dependencies: ["CYAML", "ProbityFeatures", "ProbityLM", "ProbityFormats", "ProbityTensor"]),
        .target(name: "ProbityAudit",
                dependencies: ["ProbityRules", "ProbityTraining", "ProbityFeatures", "ProbityLM", "ProbityFormats", "ProbityTensor"]),
        // Serving: one model shared by concurrent requests, each with its own rules and steering
        // (below the HTTP server, which only speaks the wire protocol).
        .target(name: "ProbityServe",
                dependencies: ["ProbityAudit", "ProbityRules", "ProbityFeatures", "ProbityLM"]),
        // The HTTP surface of serving: OpenAI's wire protocol with the `probity` extension, SSE
        // streaming, errors, auth, metrics and the audit log, over the serving engine.
        .target(name: "ProbityServer",
                dependencies: ["ProbityServe", "ProbityAudit", "ProbityRules", "ProbityFeatures", "ProbityLM",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "Logging", package: "swift-log")]),
        // Self-contained HTML: audit reports and feature dashboards (above the audit, below the tool).
        .target(name: "ProbityHTML",
                dependencies: ["ProbityAudit", "ProbityFeatures", "ProbityLM", "ProbityFormats",
                               .product(name: "Mustache", package: "swift-mustache")]),
        .executableTarget(
            name: "probity",
            dependencies: [
                "ProbityLM", "ProbityFeatures", "ProbityFormats", "ProbityTensor", "ProbityRules", "ProbityAudit", "ProbityTraining",
                "ProbityHTML", "ProbityServe", "ProbityServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(name: "ProbityFuzzing",
                dependencies: ["ProbityAudit", "ProbityRules", "ProbityFeatures", "ProbityLM", "ProbityFormats", "ProbityTensor"]),

        // Tests. Every seeded random number comes from ProbityTensor's SplitMix64; set-up data (the
        // default model, test vocabularies, corpora) from ProbityTestSupport, which fails a test
        // that finds it missing rather than skip it.
        .target(name: "ProbityTestSupport", dependencies: ["ProbityLM", "ProbityFormats"], path: "Tests/ProbityTestSupport"),
        .testTarget(name: "ProbityTensorTests", dependencies: ["ProbityTensor"]),
        .testTarget(name: "ProbityFormatsTests", dependencies: ["ProbityFormats", "ProbityTensor", "ProbityTestSupport"]),
        .testTarget(name: "ProbityLMTests", dependencies: ["ProbityLM", "ProbityTensor", "ProbityFeatures", "ProbityTestSupport"]),
        .testTarget(name: "ProbityFeaturesTests", dependencies: ["ProbityFeatures", "ProbityLM", "ProbityFormats", "ProbityTensor"]),
        .testTarget(name: "ProbityRulesTests", dependencies: ["ProbityRules", "ProbityLM", "ProbityTensor"]),
        .testTarget(name: "ProbityAuditTests", dependencies: ["ProbityAudit", "ProbityRules", "ProbityTestSupport"]),
        .testTarget(name: "ProbityTrainingTests", dependencies: ["ProbityTraining", "ProbityFeatures", "ProbityLM", "ProbityFormats"]),
        .testTarget(name: "ProbityFuzzingTests", dependencies: ["ProbityFuzzing", "ProbityLM"]),
        .testTarget(name: "ProbityCLITests", dependencies: ["ProbityFormats", "ProbityLM", "ProbityFeatures", "ProbityRules", "ProbityAudit", "ProbityTestSupport"]),
        .testTarget(name: "ProbityServeTests", dependencies: ["ProbityServe", "ProbityAudit", "ProbityFeatures", "ProbityLM", "ProbityTestSupport"]),
        .testTarget(name: "ProbityHTMLTests", dependencies: ["ProbityHTML", "ProbityAudit", "ProbityFeatures", "ProbityRules", "ProbityTestSupport"]),
        .testTarget(name: "ProbityServerTests",
                    dependencies: ["ProbityServer", "ProbityServe", "ProbityAudit", "ProbityRules", "ProbityFeatures", "ProbityLM",
                                   "ProbityTestSupport",
                                   .product(name: "HummingbirdTesting", package: "hummingbird"),
                                   .product(name: "Hummingbird", package: "hummingbird")]),
        // Benchmarks: they print figures for docs/BENCHMARKS.md and are not part of the unit suite
        // (scripts/test skips them; `swift test -c release --filter ProbityBenchmarks` runs them).
        .testTarget(name: "ProbityBenchmarks",
                    dependencies: ["ProbityRules", "ProbityFeatures", "ProbityLM", "ProbityFormats", "ProbityTensor", "ProbityTestSupport"]),
    ]
)
