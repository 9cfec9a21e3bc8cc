// Server-sent events as OpenAI streams them: each chunk one `data: {json}\n\n` event, the stream
// closed by `data: [DONE]\n\n`.

import Foundation
import Hummingbird

enum SSE {
    /// The response headers of an event stream.
    static var headers: HTTPFields {
        var h = HTTPFields()
        h[.contentType] = "text/event-stream"
        h[.cacheControl] = "no-cache"
        return h
    }

    /// One event holding `value` as compact JSON.
    static func event<T: Encodable>(_ value: T) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var bytes = Array("data: ".utf8)
        bytes += try encoder.encode(value)
        bytes += [0x0A, 0x0A]
        return ByteBuffer(bytes: bytes)
    }

    /// The stream's end.
    static let done = ByteBuffer(string: "data: [DONE]\n\n")
}
