// The one error enum of ProbityTensor: weights whose type or shape our kernels cannot compute with.
// Callers add where the weights came from (a tensor name, a file) in `context`.

/// Bad input reaching a tensor kernel, carrying what was expected and what was found.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// The element type has no dequantization or dot kernel.
    case unsupportedType(GGMLType, context: String)
    /// A row or element count is not a whole number of the type's blocks.
    case partialBlock(GGMLType, elements: Int, context: String)
    /// A matrix shape with a negative or overflowing dimension.
    case invalidShape(rows: Int, cols: Int, context: String)

    public var description: String {
        switch self {
        case let .unsupportedType(type, context):
            let supported = Dequantize.supportedTypes.map(\.name)
            return "\(context): element type \(type.name) is not supported; expected one of "
                + supported.joined(separator: ", ")
        case let .partialBlock(type, elements, context):
            return "\(context): \(elements) elements of \(type.name) is not a whole number of "
                + "\(type.blockSize)-element blocks"
        case let .invalidShape(rows, cols, context):
            return "\(context): invalid matrix shape \(rows) rows × \(cols) columns"
        }
    }
}
