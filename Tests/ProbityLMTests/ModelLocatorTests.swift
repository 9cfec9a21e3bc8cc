import Testing
import ProbityLM

@Suite struct ModelLocatorTests {
    @Test func missingPathIsNamed() {
        #expect(throws: ModelLocatorError.notFound("/no/such.gguf")) {
            try ModelLocator.resolve("/no/such.gguf")
        }
    }
}
