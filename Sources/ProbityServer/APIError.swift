// Errors as OpenAI returns them: `{"error": {"message", "type", "param", "code"}}` with the HTTP
// status that goes with them. Every failure a client can cause ends here, and the server goes on.

import Foundation
import Hummingbird
import ProbityServe

/// An error response.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds a client should wait before retrying (`Retry-After`), for 429 and 503.
    public var retryAfter: Int?

    public var description: String { message }

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    /// A 400 naming the request field at fault.
    static func invalid(_ message: String, param: String?, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// The engine's error, with its status, type, code and param.
    init(_ error: ServeError) {
        let retry: Int?
        switch error {
        case .queueFull: retry = 1
        case .shuttingDown: retry = 5
        default: retry = nil
        }
        self.init(status: HTTPResponse.Status(code: error.status), message: error.description, type: error.type, param: error.param,
                  code: error.code, retryAfter: retry)
    }

    /// A body that cannot be decoded as the request type: malformed JSON, or a field of the wrong type.
    init(decoding error: DecodingError) {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for k in keys {
                if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
            }
            return out
        }
        switch error {
        case let .keyNotFound(key, context):
            let p = path(context.codingPath + [key])
            self = .invalid("missing required field '\(p)'", param: p)
        case let .typeMismatch(type, context):
            let p = path(context.codingPath)
            if p.isEmpty {
                self = .invalid("the body must be a JSON object", param: nil)
            } else {
                self = .invalid("\(p): expected \(Self.typeName(type, context: context))", param: p)
            }
        case let .valueNotFound(type, context):
            let p = path(context.codingPath)
            self = .invalid("\(p): expected \(Self.typeName(type, context: context)), found null", param: p.isEmpty ? nil : p)
        case let .dataCorrupted(context):
            let p = path(context.codingPath)
            if p.isEmpty {
                self = .invalid("the body is not valid JSON: \(Self.underlying(context))", param: nil)
            } else {
                self = .invalid("\(p): \(context.debugDescription)", param: p)
            }
        @unknown default:
            self = .invalid("the body cannot be read: \(error)", param: nil)
        }
    }

    private static func underlying(_ context: DecodingError.Context) -> String {
        if let e = context.underlyingError as NSError?, let d = e.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return context.debugDescription
    }

    private static func typeName(_ type: Any.Type, context: DecodingError.Context) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            // The custom decoders describe what they take; the rest are objects or arrays.
            if !context.debugDescription.isEmpty, context.debugDescription.hasPrefix("expected") { return String(context.debugDescription.dropFirst(9)) }
            let name = String(describing: type)
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : "a value of type \(name)"
        }
    }

    /// The JSON response.
    func response() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body())))
    }

    /// `{"error": {...}}`, compact.
    func body() -> [UInt8] {
        let envelope = ErrorEnvelope(error: .init(message: message, type: type, param: param, code: code))
        return Array((try? JSONEncoder().encode(envelope)) ?? Data(#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.utf8))
    }
}

/// OpenAI's error object.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    public struct Body: Codable, Sendable, Equatable {
        public var message: String
        public var type: String
        /// null when no one field is at fault.
        public var param: String?
        public var code: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case message, type, param, code
        }

        public init(message: String, type: String, param: String?, code: String?) {
            self.message = message
            self.type = type
            self.param = param
            self.code = code
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            message = try c.decode(String.self, forKey: .message)
            type = try c.decode(String.self, forKey: .type)
            param = try c.decodeIfPresent(String.self, forKey: .param)
            code = try c.decodeIfPresent(String.self, forKey: .code)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(param, forKey: .param)
            try c.encode(code, forKey: .code)
        }
    }

    public var error: Body

    enum CodingKeys: String, CodingKey, CaseIterable {
        case error
    }
}

/// Turns every error a handler or the router throws into an OpenAI error object: Hummingbird's
/// HTTP errors (404 for an unknown route, 413) keep their status.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as ServeError {
            return APIError(error).response()
        } catch let error as any HTTPResponseError {
            let status = error.status
            let message: String
            switch status {
            case .notFound: message = "no route \(request.method) \(request.uri.path)"
            case .contentTooLarge: message = "the request body is too large"
            default: message = status.reasonPhrase
            }
            let type = status.code >= 500 ? "server_error" : "invalid_request_error"
            return APIError(status: status, message: message, type: type, code: status == .notFound ? "not_found" : nil).response()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("request failed: \(error)")
            return APIError(status: .internalServerError, message: "internal error: \(error)", type: "server_error").response()
        }
    }
}
