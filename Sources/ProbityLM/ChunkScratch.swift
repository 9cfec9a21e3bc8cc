// A pass's scratch sized to the chunk it runs. A multi-row chunk (a prompt, up to 512 rows) gets
// buffers for its rows, given back after it, so between forward calls, and while a batch decodes
// it with scratch of its own, a session holds one row's worth beside its cache.

/// An architecture's scratch buffers with room for some number of rows.
protocol PassScratch {
    associatedtype Config
    init(rows: Int, _ config: Config)
    /// Deallocates every buffer; the value must not be used afterwards.
    func free()
}

/// Scratch that grows to a chunk and goes back to one row.
struct ChunkScratch<Buffers: PassScratch> {
    private(set) var buffers: Buffers
    /// Rows the buffers hold now.
    private(set) var rows = 1
    private let config: Buffers.Config

    init(_ config: Buffers.Config) {
        self.config = config
        buffers = Buffers(rows: 1, config)
    }

    /// Room for `n` rows.
    mutating func reserve(_ n: Int) {
        guard n > rows else { return }
        buffers.free()
        buffers = Buffers(rows: n, config)
        rows = n
    }

    /// Back to one row.
    mutating func release() {
        guard rows > 1 else { return }
        buffers.free()
        buffers = Buffers(rows: 1, config)
        rows = 1
    }

    /// Deallocates the buffers (the owner's deinit).
    func free() { buffers.free() }
}
