// The keys and values of one sequence for every block, and causal attention over them. Positions
// are stored in tiles of `KVCache.tile`: per tile and KV head, the keys transposed (dimension-major)
// and the values position-major, so the kernel (CKernels/attention.c) scores a whole tile for all
// the query heads of a group with one pass over its keys and one over its values. Entries are floats
// (the default) or IEEE halves (`KVCacheStorage.f16`, llama.cpp's default: half the memory).
import CKernels

/// How a KV cache stores its keys and values. Floats keep every bit of the computed keys and values;
/// halves round each to the nearest binary16 (ties to even, as llama.cpp's F16 cache does) and
/// widen it back exactly when attended, for half the memory.
public enum KVCacheStorage: String, Sendable, CaseIterable, Codable {
    case f32
    case f16

    /// Bytes per stored number.
    public var bytes: Int { self == .f32 ? 4 : 2 }
}

/// Keys and values for `blocks` blocks of `kvHeads` heads of `headDim` floats, `capacity` positions.
public final class KVCache {
    /// Positions per tile.
    public static let tile = Int(PK_ATTENTION_TILE)

    public let blocks: Int
    public let kvHeads: Int
    public let headDim: Int
    public let capacity: Int
    public let storage: KVCacheStorage
    private let tiles: Int
    private let keys: [UnsafeMutableRawPointer]    // per block: (tiles, kvHeads, headDim, tile) of `storage`
    private let values: [UnsafeMutableRawPointer]  // per block: (tiles, kvHeads, tile, headDim) of `storage`
    /// Decode's tile records: (heads, tiles, headDim + 2).
    private let records: UnsafeMutablePointer<Float>
    private static let level = pk_best_isa()

    /// Bytes of keys and values per position, over all blocks.
    public static func bytesPerPosition(blocks: Int, kvHeads: Int, headDim: Int, storage: KVCacheStorage) -> Int {
        2 * blocks * kvHeads * headDim * storage.bytes
    }

    /// `heads` query heads, a multiple of `kvHeads`, read the cache.
    public init(blocks: Int, kvHeads: Int, headDim: Int, heads: Int, capacity: Int, storage: KVCacheStorage = .f32) {
        precondition(blocks >= 0 && kvHeads >= 1 && headDim >= 1 && capacity >= 0, "bad KV cache shape")
        precondition(heads >= kvHeads && heads % kvHeads == 0, "query heads must be a multiple of KV heads")
        self.blocks = blocks
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = capacity
        self.storage = storage
        tiles = (capacity + Self.tile - 1) / Self.tile
        let count = max(1, tiles * kvHeads * headDim * Self.tile)
        // Not initialised: a position is read only after it is stored, and the pages of an unused
        // context stay untouched. Bound to the element type the kernels read.
        func buffer() -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: count * storage.bytes, alignment: 64)
            switch storage {
            case .f32: _ = p.bindMemory(to: Float.self, capacity: count)
            case .f16: _ = p.bindMemory(to: UInt16.self, capacity: count)
            }
            return p
        }
        keys = (0..<blocks).map { _ in buffer() }
        values = (0..<blocks).map { _ in buffer() }
        records = .allocate(capacity: max(1, heads * tiles * (headDim + 2)))
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
        records.deallocate()
    }

    /// Copies the keys and values of positions 0 ..< n from `other`, a cache of the same shape and
    /// storage (a session forked after its prompt starts from its parent's cache). Whole tiles are
    /// copied; the part of the last tile past n is overwritten before it is read, as in any cache.
    public func copyPrefix(of other: KVCache, positions n: Int) {
        precondition(other.blocks == blocks && other.kvHeads == kvHeads && other.headDim == headDim
                     && other.storage == storage, "KV caches of different shapes or storage")
        precondition(n >= 0 && n <= capacity && n <= other.capacity, "KV cache prefix out of range")
        // Both caches hold whole tiles up to their capacity, which is at least n.
        let bytes = (n + Self.tile - 1) / Self.tile * Self.tile * kvHeads * headDim * storage.bytes
        for l in 0..<blocks {
            keys[l].copyMemory(from: other.keys[l], byteCount: bytes)
            values[l].copyMemory(from: other.values[l], byteCount: bytes)
        }
    }

    /// Stores `rows` positions from `start`: row i of `k` and `v` (kvHeads · headDim floats each)
    /// is position start + i.
    public func store(block l: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                      rows n: Int, at start: Int) {
        precondition(start >= 0 && start + n <= capacity, "KV cache position out of range")
        let t = Self.tile, d = headDim, width = kvHeads * headDim
        if storage == .f16 {
            let kc = keys[l].assumingMemoryBound(to: UInt16.self), vc = values[l].assumingMemoryBound(to: UInt16.self)
            for i in 0..<n {
                let p = start + i, base = (p / t) * kvHeads, offset = p % t
                for g in 0..<kvHeads {
                    let src = i * width + g * d
                    pk_float_to_half(Self.level, k + src, d, kc + (base + g) * d * t + offset, t)
                    pk_float_to_half(Self.level, v + src, d, vc + ((base + g) * t + offset) * d, 1)
                }
            }
            return
        }
        let kc = keys[l].assumingMemoryBound(to: Float.self), vc = values[l].assumingMemoryBound(to: Float.self)
        for i in 0..<n {
            let p = start + i, base = (p / t) * kvHeads, offset = p % t
            for g in 0..<kvHeads {
                let src = i * width + g * d
                let kt = kc + (base + g) * d * t + offset
                for j in 0..<d { kt[j * t] = k[src + j] }
                (vc + ((base + g) * t + offset) * d).update(from: v + src, count: d)
            }
        }
    }

    /// Causal attention for `rows` query rows at positions start ..< start + rows, each already
    /// stored: row i (heads · headDim floats of `q`) attends to positions 0 ... start + i, query
    /// head h to KV head h / (heads / kvHeads); out row i gets the heads' outputs side by side.
    /// Softmax is exact to float rounding (exponentials within 1.06 ulp with the same bits at every
    /// level, denominators in double) and a position's result has the same bits whether it ran in a
    /// prompt chunk or alone, at any thread count.
    ///
    /// With a `window` w (sliding-window attention), row i attends only to the last w positions,
    /// max(0, start + i − w + 1) ... start + i, as llama.cpp masks a position p₀ from a query at p₁
    /// when p₁ − p₀ ≥ w. Without one (nil) every earlier position is attended.
    public func attend(block l: Int, queries q: UnsafePointer<Float>, heads: Int, rows n: Int, start: Int,
                       scale: Float, window: Int? = nil, into out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        precondition(heads % kvHeads == 0 && start >= 0 && start + n <= capacity, "bad attention call")
        precondition(window.map { $0 >= 1 } ?? true, "an attention window holds at least one position")
        let kc = keys[l], vc = values[l], t = Self.tile, d = headDim, kvHeads = kvHeads
        let group = heads / kvHeads, width = heads * d, recordWidth = d + 2, level = Self.level
        let tileSize = kvHeads * d * t, half = storage == .f16

        // The group's queries of row i against positions from ..< count of tile c of KV head g,
        // written to `rec`.
        func attendTile(_ i: Int, _ g: Int, _ c: Int, from: Int, count: Int, _ rec: UnsafeMutablePointer<Float>) {
            let offset = c * tileSize + g * d * t, query = q + i * width + g * group * d
            if half {
                pk_attention_tile_f16_from(level, query, group, d, scale,
                                           kc.assumingMemoryBound(to: UInt16.self) + offset,
                                           vc.assumingMemoryBound(to: UInt16.self) + offset, from, count, rec)
            } else {
                pk_attention_tile_from(level, query, group, d, scale, kc.assumingMemoryBound(to: Float.self) + offset,
                                       vc.assumingMemoryBound(to: Float.self) + offset, from, count, rec)
            }
        }
        // The first position the query at position p attends to.
        func first(_ p: Int) -> Int { window.map { max(0, p - $0 + 1) } ?? 0 }

        if n == 1 {
            // One row (decode): a task per KV head and tile, then each head's records merged.
            let span = start + 1, lo = first(start), firstTile = lo / t
            let used = (span + t - 1) / t - firstTile, records = records
            pool.parallelFor(kvHeads * used) { task in
                let g = task / used, c = firstTile + task % used
                attendTile(0, g, c, from: c == firstTile ? lo - c * t : 0, count: min(t, span - c * t),
                           records + (g * used + c - firstTile) * group * recordWidth)
            }
            for h in 0..<heads {
                let g = h / group, j = h % group
                pk_attention_merge(level, records + (g * used * group + j) * recordWidth, used, group * recordWidth,
                                   d, out + h * d)
            }
            return
        }
        // A prompt chunk: a task per row and KV head, its tiles in order, then merged.
        pool.parallelFor(n * kvHeads) { task in
            let i = task / kvHeads, g = task % kvHeads
            let span = start + i + 1, lo = first(start + i), firstTile = lo / t
            let used = (span + t - 1) / t - firstTile
            withUnsafeTemporaryAllocation(of: Float.self, capacity: used * group * recordWidth) { buffer in
                guard let rec = buffer.baseAddress else { return }
                for c in firstTile..<(firstTile + used) {
                    attendTile(i, g, c, from: c == firstTile ? lo - c * t : 0, count: min(t, span - c * t),
                               rec + (c - firstTile) * group * recordWidth)
                }
                for j in 0..<group {
                    pk_attention_merge(level, rec + j * recordWidth, used, group * recordWidth, d,
                                       out + i * width + (g * group + j) * d)
                }
            }
        }
    }
}
