import Foundation
import Testing
import ProbityFormats

@Suite struct MappedFileTests {
    @Test func mapsBytes() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("probity-map-\(UUID()).bin")
        try Data([1, 2, 3, 250]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try MappedFile(path: url.path)
        #expect(Array(file.bytes) == [1, 2, 3, 250])
    }

    @Test func missingFileIsInputError() {
        #expect(throws: FileError.self) { try MappedFile(path: "/nonexistent/probity.gguf") }
    }
}
