import Testing
@testable import EvtCore

@Suite("--value-schema SPEC")
struct SchemaSpecTests {
    static let files: Set<String> = ["orders.avsc", "order.schema.json", "shared"]
    func spec(_ text: String) throws -> SchemaSpec { try SchemaSpec(text, fileExists: { Self.files.contains($0) }) }

    @Test("an id, topic, a subject with or without a version, a file")
    func kinds() throws {
        #expect(try spec("42") == .id(42))
        #expect(try spec("topic") == .topicSubject)
        #expect(try spec("orders-value") == .subject("orders-value", version: nil))
        #expect(try spec("orders-value:3") == .subject("orders-value", version: 3))
        #expect(try spec("com.acme:orders:12") == .subject("com.acme:orders", version: 12))
        #expect(try spec("orders.avsc") == .file(path: "orders.avsc"))
        #expect(try spec("order.schema.json") == .file(path: "order.schema.json"))
        // A file that exists wins over a subject of the same name.
        #expect(try spec("shared") == .file(path: "shared"))
        #expect(SchemaSpec.topicSubject("orders", forKey: false) == "orders-value")
        #expect(SchemaSpec.topicSubject("orders", forKey: true) == "orders-key")
    }

    @Test("what cannot be a schema is a usage error that says what to give")
    func refused() {
        for (text, words) in [("0", "out of range"), ("99999999999", "out of range"), ("", "an empty schema"),
                              ("orders-value:0", "version is a number from 1"), (":3", "version is a number from 1"),
                              ("missing.avsc", "does not exist")] {
            do {
                _ = try spec(text)
                Issue.record("\(text) was accepted")
            } catch let error as EvtError {
                #expect(error.cause == .usage, "\(text)")
                #expect(error.message.contains(words), "\(text): \(error.message)")
            } catch {
                Issue.record("\(text): \(error)")
            }
        }
    }
}
