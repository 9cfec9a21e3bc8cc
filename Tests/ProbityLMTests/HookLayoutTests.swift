// The hook slot layout: one numbering for hook tables, partial passes and validation, in the
// forward order of DESIGN.md's table.

import Testing
@testable import ProbityLM

@Suite struct HookLayoutTests {
    @Test(arguments: [0, 1, 2, 30])
    func slotsNumberThePointsInForwardOrder(blocks: Int) {
        let layout = HookLayout(blocks: blocks)
        #expect(layout.points.count == layout.count)
        #expect(layout.points == HookPoint.all(blocks: blocks))
        for (i, point) in layout.points.enumerated() {
            #expect(layout.slot(point) == i, "\(point)")
            #expect(point.slot(blocks: blocks) == i, "\(point)")
        }
        #expect(layout.slot(.finalNormalized) == layout.count - 1)
        #expect(layout.slot(.residPre(blocks)) == nil)
        #expect(layout.slot(.mlpOut(-1)) == nil)
    }

    @Test func blockPointsFollowTheirOffsets() {
        let points = HookPoint.points(ofBlock: 4)
        #expect(points.count == HookLayout.perBlock)
        #expect(points.map(\.offsetInBlock) == (0..<HookLayout.perBlock).map { $0 })
        #expect(points.map(\.block) == Array(repeating: 4, count: HookLayout.perBlock))
        #expect(points.map(\.name) == ["blocks.4.hook_resid_pre", "blocks.4.hook_attn_out", "blocks.4.hook_resid_mid",
                                       "blocks.4.hook_mlp_out", "blocks.4.hook_resid_post"])
    }

    @Test func aPartialPassRunsTheBlocksUpToItsPoint() throws {
        let layout = HookLayout(blocks: 3)
        func blocks(_ point: HookPoint) throws -> Range<Int> { layout.blocks(through: try #require(layout.slot(point))) }
        #expect(try blocks(.embed) == 0..<0)
        #expect(try blocks(.residPre(0)) == 0..<1)
        #expect(try blocks(.residPost(0)) == 0..<1)
        #expect(try blocks(.residMid(1)) == 0..<2)
        #expect(try blocks(.residPost(2)) == 0..<3)
        #expect(try blocks(.finalNormalized) == 0..<3)
    }
}
