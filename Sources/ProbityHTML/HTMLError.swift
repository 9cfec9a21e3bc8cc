// What can go wrong making a page: a template that does not parse (a defect, caught by the tests;
// exit 3), a page that cannot be written or a latent a pack lacks (exit 2). Bad reports and packs
// fail earlier, in their own readers.

/// A page template that does not parse: a defect of this build, not of the user's input.
public struct HTMLTemplateError: Error, CustomStringConvertible, Equatable {
    public let name: String
    public let reason: String
    public var description: String { "page template \(name) does not parse: \(reason)" }
}

/// What the user asked for that cannot be made: a page that cannot be written, a latent a pack lacks.
public enum HTMLError: Error, CustomStringConvertible, Equatable {
    /// A page that cannot be written.
    case cannotWrite(path: String, reason: String)
    /// A latent id asked for that the pack does not have.
    case unknownLatent(pack: String, id: String, count: Int)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        case let .unknownLatent(pack, id, count):
            return "\(pack): --latents: expected latent ids from 0 to \(count - 1), found '\(id)'"
        }
    }
}
