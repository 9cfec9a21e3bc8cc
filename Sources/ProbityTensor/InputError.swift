// The marker for errors caused by what a user handed us (a file, a rule, an argument).
// The CLI maps these to exit code 2; anything else is an internal error (exit 3).

/// An error caused by bad input. Its `description` is the one clear message a user sees:
/// what is wrong, where, and what was expected versus found.
public protocol InputError: Error, CustomStringConvertible {}
