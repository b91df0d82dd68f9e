internal import CJSONSchema

/// A JSON Schema (draft 4, 6 or 7, from its `$schema`; draft 7 without one), compiled once,
/// that says of each JSON value whether it fits and, when not, where and why (valijson's
/// first error). Checking reuses one parsed document, so a stream of values costs no
/// allocation beyond valijson's own. Not for use from two threads at once.
final class JSONSchemaValidator {
    private let compiled: OpaquePointer

    /// Compiles `schema` (JSON text). A schema that is not JSON, declares another draft or
    /// that valijson cannot compile (a `$ref` to another document, say) is a usage error that says which.
    init(schema: UnsafeRawBufferPointer) throws(EvtError) {
        var message = [CChar](repeating: 0, count: 512)
        let handle = message.withUnsafeMutableBufferPointer { out in
            evt_jsonschema_compile(schema.baseAddress?.assumingMemoryBound(to: CChar.self), schema.count, out.baseAddress, out.count)
        }
        guard let handle else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw EvtError.usage("\(clause(text)); fix the schema, or give another one.")
        }
        compiled = handle
    }

    deinit { evt_jsonschema_free(compiled) }

    /// nil when `json` (one JSON text) fits the schema; otherwise its first misfit. A text
    /// that is not JSON, or that valijson cannot check, is a misfit at `.` that says so.
    func check(_ json: UnsafeRawBufferPointer) -> SchemaMismatch? {
        let result = evt_jsonschema_check(compiled, json.baseAddress?.assumingMemoryBound(to: CChar.self), json.count)
        guard result != EVT_JSONSCHEMA_VALID else { return nil }
        return SchemaMismatch(path: String(cString: evt_jsonschema_error_path(compiled)),
                              expected: String(cString: evt_jsonschema_error_expected(compiled)),
                              found: evt_jsonschema_error_found(compiled).map { String(cString: $0) })
    }
}
