import Testing
@testable import EvtCore

// JSONSchemaValidator's answers as a bad-line message shows them: the jq-style path of the
// first misfit, what the schema expected there and what the value holds.

private func validator(_ schema: String) throws -> JSONSchemaValidator {
    var schema = schema
    return try schema.withUTF8 { try JSONSchemaValidator(schema: UnsafeRawBufferPointer($0)) }
}

private func check(_ validator: JSONSchemaValidator, _ json: String) -> SchemaMismatch? {
    var json = json
    return json.withUTF8 { validator.check(UnsafeRawBufferPointer($0)) }
}

/// The message a schema that cannot be compiled gives.
private func compileError(_ schema: String) -> EvtError? {
    do { _ = try validator(schema); return nil } catch let error as EvtError { return error } catch { return nil }
}

@Suite("JSONSchemaValidator: where and why a value does not fit")
struct JSONSchemaValidatorTests {
    @Test("a misfit inside nested objects and arrays is named by its jq path, with what was found")
    func nestedPath() throws {
        let schema = try validator("""
            {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object",
             "properties": {"qty": {"type": "integer"}, "first name": {"type": "string"}}}}}}
            """)
        #expect(check(schema, #"{"items": [{"qty": 1}, {"qty": 2}, {"qty": "three"}]}"#)
                == SchemaMismatch(path: ".items[2].qty", expected: "integer", found: "\"three\""))
        #expect(check(schema, #"{"items": [{"first name": {"a": 1}}]}"#)
                == SchemaMismatch(path: ".items[0].\"first name\"", expected: "string", found: "an object"))
        #expect(check(schema, #"{"items": [{"qty": 1}, {"first name": "Ada"}]}"#) == nil)
    }

    @Test("a missing required member is named, at the object that lacks it")
    func required() throws {
        let schema = try validator(#"{"properties": {"order": {"required": ["id", "qty"]}}}"#)
        let mismatch = check(schema, #"{"order": {"id": 7}}"#)
        #expect(mismatch == SchemaMismatch(path: ".order", expected: #"required member "qty""#, found: nil))
        #expect(mismatch?.description == #".order: expected required member "qty""#)
    }

    @Test("type, enum, bounds and lengths say what was expected in words")
    func constraints() throws {
        let schema = try validator("""
            {"type": "object", "properties": {"status": {"enum": ["new", "paid"]}, "qty": {"type": "integer", "minimum": 1},
             "note": {"type": "string", "maxLength": 8}, "tags": {"type": "array", "maxItems": 2}}}
            """)
        #expect(check(schema, "[1]") == SchemaMismatch(path: ".", expected: "object", found: "an array"))
        #expect(check(schema, #"{"status": "lost"}"#) == SchemaMismatch(path: ".status", expected: #"one of "new", "paid""#, found: "\"lost\""))
        #expect(check(schema, #"{"qty": 0}"#) == SchemaMismatch(path: ".qty", expected: "a number greater than or equal to 1", found: "0"))
        #expect(check(schema, #"{"qty": 1.5}"#) == SchemaMismatch(path: ".qty", expected: "integer", found: "1.5"))
        #expect(check(schema, #"{"note": "a gift for Ada"}"#) == SchemaMismatch(path: ".note", expected: "a string of at most 8 characters", found: "\"a gift for Ada\""))
        #expect(check(schema, #"{"tags": [1, 2, 3]}"#) == SchemaMismatch(path: ".tags", expected: "an array of at most 2 elements", found: "an array"))
        #expect(check(schema, #"{"status": "paid", "qty": 3, "note": "gift", "tags": []}"#) == nil)
    }

    @Test("type, enum, const and pattern are read from the schema where the value failed, through local $refs")
    func schemaWords() throws {
        let schema = try validator("""
            {"definitions": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}, "maybe": {"type": ["string", "null"]}},
             "properties": {"currency": {"$ref": "#/definitions/code"}, "note": {"$ref": "#/definitions/maybe"},
                            "version": {"const": 2}, "lines": {"type": "array", "items": {"additionalProperties": {"type": "number"}}}}}
            """)
        #expect(check(schema, #"{"currency": "eur"}"#) == SchemaMismatch(path: ".currency", expected: #"a string matching "^[A-Z]{3}$""#, found: "\"eur\""))
        #expect(check(schema, #"{"currency": 978}"#) == SchemaMismatch(path: ".currency", expected: "string", found: "978"))
        #expect(check(schema, #"{"note": 1}"#) == SchemaMismatch(path: ".note", expected: "string or null", found: "1"))
        #expect(check(schema, #"{"version": 3}"#) == SchemaMismatch(path: ".version", expected: "2", found: "3"))
        #expect(check(schema, #"{"lines": [{"qty": 1}, {"qty": "2"}]}"#) == SchemaMismatch(path: ".lines[1].qty", expected: "number", found: "\"2\""))
    }

    @Test("a failure inside anyOf or allOf keeps valijson's general words: the schema at the path does not say it")
    func combinators() throws {
        let schema = try validator(#"{"properties": {"id": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "n": {"type": "number", "allOf": [{"type": "integer"}]}}}"#)
        #expect(check(schema, #"{"id": true}"#) == SchemaMismatch(path: ".id", expected: "a value of one of the types the schema allows", found: "true"))
        #expect(check(schema, #"{"n": 1.5}"#) == SchemaMismatch(path: ".n", expected: "a value of one of the types the schema allows", found: "1.5"))
    }

    @Test("a long string found is cut short")
    func longFound() throws {
        let schema = try validator(#"{"type": "integer"}"#)
        let found = check(schema, "\"" + String(repeating: "x", count: 100) + "\"")?.found
        #expect(found == "\"" + String(repeating: "x", count: 35) + "…\"")
    }

    @Test("the draft comes from $schema: draft 4's boolean exclusiveMinimum, draft 6 and 7's number")
    func drafts() throws {
        let draft4 = try validator(#"{"$schema": "http://json-schema.org/draft-04/schema#", "minimum": 5, "exclusiveMinimum": true}"#)
        #expect(check(draft4, "5") == SchemaMismatch(path: ".", expected: "a number greater than 5", found: "5"))
        #expect(check(draft4, "6") == nil)
        for uri in ["http://json-schema.org/draft-06/schema#", "http://json-schema.org/draft-07/schema#"] {
            let schema = try validator(#"{"$schema": "\#(uri)", "exclusiveMinimum": 5}"#)
            #expect(check(schema, "5") == SchemaMismatch(path: ".", expected: "a number greater than 5", found: "5"))
        }
        let unnamed = try validator(#"{"exclusiveMinimum": 5}"#)   // draft 7
        #expect(check(unnamed, "5") != nil)
        #expect(check(unnamed, "5.5") == nil)
    }

    @Test("a schema that is not JSON, of another draft, or with a $ref to another document is a usage error that says why")
    func badSchemas() {
        let notJSON = compileError(#"{"type": "#)
        #expect(notJSON?.cause == .usage)
        #expect(notJSON?.message.contains("the schema is not JSON") == true)
        let otherDraft = compileError(#"{"$schema": "https://json-schema.org/draft/2020-12/schema"}"#)
        #expect(otherDraft?.cause == .usage)
        #expect(otherDraft?.message.contains("drafts 4, 6 and 7") == true)
        let remote = compileError(#"{"$ref": "http://example.com/order.json"}"#)
        #expect(remote?.cause == .usage)
        #expect(remote?.message.contains(#"its $ref to "http://example.com/order.json" names another document, and evt fetches none"#) == true)
    }

    @Test("text that is not JSON, or a pattern valijson cannot run, is a misfit at . that says so; the next value is checked afresh")
    func uncheckable() throws {
        let schema = try validator(#"{"properties": {"code": {"pattern": "(?<=a)b"}}}"#)
        let notJSON = check(schema, #"{"code": "#)
        #expect(notJSON?.path == ".")
        #expect(notJSON?.expected.hasPrefix("JSON text") == true)
        let badPattern = check(schema, #"{"code": "ab"}"#)
        #expect(badPattern?.path == ".")
        #expect(badPattern?.expected.hasPrefix("a value the schema can check") == true)
        #expect(check(schema, #"{"id": 1}"#) == nil)
    }

    @Test("a $ref to a draft's meta-schema is resolved from memory")
    func metaSchemaReference() throws {
        let schema = try validator(#"{"properties": {"rule": {"$ref": "http://json-schema.org/draft-07/schema#"}}}"#)
        #expect(check(schema, #"{"rule": {"type": "string", "minLength": 2}}"#) == nil)
        #expect(check(schema, #"{"rule": {"minLength": -1}}"#)?.path == ".rule.minLength")
    }

    @Test("one validator checks many values in turn, each on its own")
    func reuse() throws {
        let schema = try validator(#"{"type": "object", "properties": {"n": {"type": "integer", "maximum": 500}}}"#)
        for n in 0..<1000 {
            let mismatch = check(schema, #"{"n": \#(n), "pad": "\#(String(repeating: "p", count: n))"}"#)
            #expect((mismatch == nil) == (n <= 500), "n = \(n)")
        }
    }
}
