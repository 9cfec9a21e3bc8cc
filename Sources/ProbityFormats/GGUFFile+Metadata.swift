// Typed metadata lookups that fail with one clear message naming the file, the key, the type
// expected and the type found, so loaders never check types by hand.

extension GGUFFile {
    /// The integer at `key`; throws if it is missing, not an integer, or does not fit in `Int`.
    public func requiredInt(_ key: String) throws -> Int {
        let v = try required(key)
        guard let i = v.intValue else { throw wrongType(key, "an integer", v) }
        return i
    }

    /// The number at `key` (float or integer) as `Double`.
    public func requiredDouble(_ key: String) throws -> Double {
        let v = try required(key)
        guard let d = v.doubleValue else { throw wrongType(key, "a number", v) }
        return d
    }

    public func requiredString(_ key: String) throws -> String {
        let v = try required(key)
        guard let s = v.stringValue else { throw wrongType(key, "a string", v) }
        return s
    }

    public func requiredStringArray(_ key: String) throws -> [String] {
        let v = try required(key)
        guard let a = v.stringArray else { throw wrongType(key, "an array of strings", v) }
        return a
    }

    /// The integer at `key`, nil if absent; throws if present with another type.
    public func optionalInt(_ key: String) throws -> Int? {
        guard metadata[key] != nil else { return nil }
        return try requiredInt(key)
    }

    public func optionalDouble(_ key: String) throws -> Double? {
        guard metadata[key] != nil else { return nil }
        return try requiredDouble(key)
    }

    public func optionalString(_ key: String) throws -> String? {
        guard metadata[key] != nil else { return nil }
        return try requiredString(key)
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let v = metadata[key] else { return nil }
        guard let b = v.boolValue else { throw wrongType(key, "a bool", v) }
        return b
    }

    /// `general.architecture`.
    public func architecture() throws -> String { try requiredString(GGUFKey.architecture) }

    private func required(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw FormatError.missingKey(path: path, key: key) }
        return v
    }

    private func wrongType(_ key: String, _ expected: String, _ found: GGUFValue) -> FormatError {
        .wrongValueType(path: path, key: key, expected: expected, found: "\(found.typeName) \(found.summary())")
    }
}
