// `--api-key`: every endpoint but /health asks for `Authorization: Bearer KEY`.

import Hummingbird

struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw APIError(status: .unauthorized, message: "missing API key: send Authorization: Bearer KEY", type: "invalid_request_error",
                           code: "invalid_api_key")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), Self.equal(Array(header.dropFirst(prefix.count).utf8), Array(key.utf8)) else {
            throw APIError(status: .unauthorized, message: "invalid API key", type: "invalid_request_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }

    /// Compares in time that depends on the lengths alone, not on where the bytes differ.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0 && a.count == b.count
    }
}
