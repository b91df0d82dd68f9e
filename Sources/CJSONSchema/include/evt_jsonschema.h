// A JSON Schema (draft 4, 6 or 7) compiled once and checked against many JSON texts, by
// valijson over rapidjson. C++ stays behind this C API: no exception crosses it, and Swift
// sees only these declarations.
#ifndef EVT_JSONSCHEMA_H
#define EVT_JSONSCHEMA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A compiled schema, with the document, validator and last error it reuses between checks.
/// Not safe to share between threads.
typedef struct evt_jsonschema evt_jsonschema;

/// Compiles the schema in `text` (UTF-8 JSON, `length` bytes). The draft comes from its
/// `$schema` (draft 6 is read by valijson's draft 7 parser); without one, draft 7. A `$ref` to
/// another document resolves only to the drafts' meta-schemas, held in memory. On failure
/// returns NULL and writes a NUL-terminated message into `error` (at most `error_size` bytes).
evt_jsonschema *evt_jsonschema_compile(const char *text, size_t length, char *error, size_t error_size);

void evt_jsonschema_free(evt_jsonschema *schema);

/// What `evt_jsonschema_check` found.
typedef enum {
    /// The text is JSON and fits the schema.
    EVT_JSONSCHEMA_VALID = 0,
    /// The text is JSON and does not fit: see the error accessors.
    EVT_JSONSCHEMA_INVALID = 1,
    /// The text is not JSON: the error's path is `.`, its expectation says where it broke.
    EVT_JSONSCHEMA_NOT_JSON = 2,
    /// valijson could not check it (a `pattern` std::regex cannot compile, say): the error's
    /// expectation says why.
    EVT_JSONSCHEMA_UNCHECKABLE = 3,
} evt_jsonschema_result;

/// Checks one JSON text (`length` bytes, not NUL-terminated). Validity is decided without
/// collecting errors; only a text that fails is checked again to describe its first error.
evt_jsonschema_result evt_jsonschema_check(evt_jsonschema *schema, const char *json, size_t length);

/// The first error of the last check that did not pass, each valid until the next check:
/// where, jq-style (`.`, `.items[2].qty`, `."first name"`);
const char *evt_jsonschema_error_path(const evt_jsonschema *schema);
/// what the schema wanted there (`one of the schema's enum values`, `required member "qty"`);
const char *evt_jsonschema_error_expected(const evt_jsonschema *schema);
/// and what the value holds there (`"three"`, `an object`), or NULL when that adds nothing.
const char *evt_jsonschema_error_found(const evt_jsonschema *schema);

#ifdef __cplusplus
}
#endif

#endif
