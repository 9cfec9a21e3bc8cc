// The one registry of feature actions by name: rules (`action:`), feature packs' edit parser and
// `steer`'s flags all look actions up here. docs/rules.md, "Adding an action".

/// Action types by name.
public struct ActionRegistry: Sendable {
    private var types: [String: any Action.Type] = [:]

    /// An empty registry.
    public init() {}

    /// Adds an action. Registering a name twice is a programming mistake.
    public mutating func register(_ action: any Action.Type) {
        precondition(types[action.name] == nil, "action '\(action.name)' registered twice")
        types[action.name] = action
    }

    /// The action registered under `name`.
    public subscript(name: String) -> (any Action.Type)? { types[name] }

    /// The action a command line names, where words may be joined with `-` as flags spell them
    /// (`project-out` is `project_out`).
    public func action(commandLineName name: String) -> (any Action.Type)? {
        types[name.replacingOccurrences(of: "-", with: "_")]
    }

    /// The registered names, sorted.
    public var names: [String] { types.keys.sorted() }

    /// The built-in actions.
    public static let standard: ActionRegistry = {
        var registry = ActionRegistry()
        registry.register(ClampAction.self)
        registry.register(ScaleAction.self)
        registry.register(AblateAction.self)
        registry.register(CapAction.self)
        registry.register(AddAction.self)
        registry.register(ProjectOutAction.self)
        return registry
    }()
}
