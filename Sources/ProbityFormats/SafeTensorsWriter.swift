// Writes safetensors files: tensors laid out in the order added, a JSON header with sorted keys,
// padded with spaces so the data section starts on an 8-byte boundary (as the reference writer does).

import Foundation

/// Builds a safetensors file in memory.
public struct SafeTensorsWriter {
    /// Name used in error messages (the destination, when known).
    public var name: String
    /// Written as `__metadata__` when not empty.
    public var metadata: [String: String] = [:]
    private var tensors: [(info: SafeTensorInfo, data: [UInt8])] = []

    public init(name: String = "output.safetensors") { self.name = name }

    /// Adds a tensor; `shape` is row-major and `data` its raw little-endian bytes.
    public mutating func addTensor(name tensorName: String, dtype: SafeTensorDType, shape: [Int], data: [UInt8]) throws {
        guard tensorName != "__metadata__", !tensors.contains(where: { $0.info.name == tensorName }) else {
            throw FormatError.duplicateTensor(path: name, offset: 0, name: tensorName)
        }
        var elements = 1
        for d in shape {
            guard d >= 0 else {
                throw FormatError.badHeaderField(path: name, at: "\(tensorName).shape", expected: "non-negative dimensions",
                                                 found: "\(shape)")
            }
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw FormatError.elementCountOverflow(path: name, tensor: tensorName, shape: shape) }
            elements = p
        }
        let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw FormatError.elementCountOverflow(path: name, tensor: tensorName, shape: shape) }
        guard data.count == expected else {
            throw FormatError.sizeMismatch(path: name, tensor: tensorName, expected: expected, found: data.count)
        }
        let start = tensors.last?.info.dataRange.upperBound ?? 0
        tensors.append((SafeTensorInfo(name: tensorName, dtype: dtype, shape: shape, dataRange: start..<(start + data.count)), data))
    }

    /// Adds a tensor of floats stored as `dtype` (F32, F16 or BF16; F16 and BF16 round to nearest,
    /// ties to even). A finite value beyond F16's range is an error, not an infinity.
    public mutating func addTensor(name tensorName: String, shape: [Int], floats: [Float], as dtype: SafeTensorDType = .f32) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * dtype.byteSize)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        switch dtype {
        case .f32:
            for f in floats { append(f.bitPattern) }
        case .f16:
            for (i, f) in floats.enumerated() {
                let h = Float16(f)
                if f.isFinite && !h.isFinite {
                    throw FormatError.cannotWrite(path: name, reason: "tensor '\(tensorName)' element \(i) is \(f), beyond F16's range (±65504)")
                }
                append(h.bitPattern)
            }
        case .bf16:
            for f in floats {
                let bits = f.bitPattern
                if f.isNaN { append(UInt16(0x7FC0)); continue }
                let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
                append(UInt16(truncatingIfNeeded: rounded >> 16))
            }
        default:
            throw FormatError.cannotWrite(path: name, reason: "tensor '\(tensorName)': floats can be written as F32, F16 or BF16, not \(dtype.rawValue)")
        }
        try addTensor(name: tensorName, dtype: dtype, shape: shape, data: bytes)
    }

    /// The whole file.
    public func bytes() throws -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        for (info, _) in tensors {
            header[info.name] = [
                "dtype": info.dtype.rawValue,
                "shape": info.shape,
                "data_offsets": [info.dataRange.lowerBound, info.dataRange.upperBound],
            ] as [String: Any]
        }
        var json: [UInt8]
        do {
            json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw FormatError.cannotWrite(path: name, reason: "cannot encode the header: \(error.localizedDescription)")
        }
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for (_, data) in tensors { out.append(contentsOf: data) }
        return out
    }

    /// Writes the file atomically.
    public func write(to path: String) throws {
        let data = Data(try bytes())
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw FormatError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }
}
