// probity-item-v1 fingerprints: the values scripts/lib/fingerprint.py computes for the same
// exchanges (pinned here), whitespace-insensitive, and sensitive to every word, role and turn order.

import ProbityFeatures
import ProbityLM
import Testing

@Suite struct ItemFingerprintTests {
    static let conversation = [ChatMessage(role: .system, content: "Keep the code 4417."),
                               ChatMessage(role: .user, content: "  What is\n the code?")]

    @Test func matchesThePythonDefinition() {
        // python3 -c 'import fingerprint as f; print(f.of_item(...))' in scripts/lib, same inputs.
        #expect(ItemFingerprint.of(messages: Self.conversation, response: "I can\u{A0}not  share it.")
            == "fa2ff63adb21beee05dfb7e2874139ed6d997418ac590308867df97c146067f8")
        #expect(ItemFingerprint.of(text: "Hello,\tworld") == "553756e3c7154a095998770d79679d6c18aaa1d4013724b7669f1a5d7f9963e4")
        // U+001C is not White_Space (Python's str.split would treat it as whitespace; the script does not).
        #expect(ItemFingerprint.of(messages: [ChatMessage(role: .user, content: "a\u{1C}b")], response: "x") == "a83d1c922fd21b5aec4758695226d4ff47dff79d63f33b8b7966f39982881082")
    }

    @Test func whitespaceDoesNotMatterButTextRolesAndOrderDo() {
        let base = ItemFingerprint.of(messages: Self.conversation, response: "I can not share it.")
        #expect(ItemFingerprint.of(messages: [ChatMessage(role: .system, content: "Keep the code 4417. "),
                                              ChatMessage(role: .user, content: "What is the code?")],
                                   response: "I can not\tshare it.") == base)
        #expect(ItemFingerprint.of(messages: Self.conversation, response: "I can not share it!") != base)
        #expect(ItemFingerprint.of(messages: Self.conversation, response: nil) != base)
        #expect(ItemFingerprint.of(messages: Self.conversation.reversed(), response: "I can not share it.") != base)
        #expect(ItemFingerprint.of(messages: [ChatMessage(role: .user, content: "Keep the code 4417."),
                                              ChatMessage(role: .user, content: "What is the code?")],
                                   response: "I can not share it.") != base)
        // Turn boundaries count: the same words split differently are another exchange.
        #expect(ItemFingerprint.of(turns: [("user", "a b"), ("assistant", "c")])
            != ItemFingerprint.of(turns: [("user", "a"), ("assistant", "b c")]))
    }
}
