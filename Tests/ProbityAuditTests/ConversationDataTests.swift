// Chat data for `probity diff` (EvalItem.loadConversations): eval lines with id, label, concept and
// response optional, every other rule of the eval format kept.

import Foundation
import Testing
@testable import ProbityAudit

@Suite struct ConversationDataTests {
    @Test func idLabelConceptAndResponseAreOptional() throws {
        let path = try EvalDataTests.write("""
        {"messages": [{"role": "user", "content": "Hi"}], "response": "Hello!"}

        {"messages": [{"role": "user", "content": "Write a login check."}]}
        \(EvalDataTests.good)

        """)
        let items = try EvalItem.loadConversations(path: path)
        #expect(items.map(\.id) == ["line 1", "line 3", "a"])
        #expect(items.map(\.response) == ["Hello!", "", "Hello!"])
        #expect(items.map(\.positive) == [false, false, true] && items.map(\.concept) == ["", "", "greeting"])
        #expect(items.map(\.line) == [1, 3, 4])
        // The strict reader still refuses the same lines.
        #expect(throws: AuditError.self) { try EvalItem.load(paths: [path]) }
    }

    @Test func badLinesAreStillRefused() throws {
        let cases: [(String, String)] = [
            (#"{"messages": [{"role": "bot", "content": "Hi"}]}"#, "messages[0].role: expected one of"),
            (#"{"messages": [], "response": "x"}"#, "'messages' is empty"),
            (#"{"messages": [{"role": "user", "content": "Hi"}], "answer": "x"}"#, "unknown key 'answer'"),
            (#"{"messages": [{"role": "user", "content": "Hi"}], "concept": ""}"#, "'concept' is empty"),
            (#"{"messages": [{"role": "user", "content": "Hi"}], "label": 3}"#, "'label': expected 0 or 1"),
        ]
        for (line, message) in cases {
            let path = try EvalDataTests.write(line + "\n")
            #expect {
                _ = try EvalItem.loadConversations(path: path)
            } throws: { error in
                "\(error)".hasPrefix("\(path):1:") && "\(error)".contains(message)
            }
        }
        let dup = try EvalDataTests.write(EvalDataTests.good + "\n" + EvalDataTests.good + "\n")
        #expect(throws: AuditError.data(path: dup, line: 2, reason: "id 'a' already used at line 1")) {
            _ = try EvalItem.loadConversations(path: dup)
        }
    }
}
