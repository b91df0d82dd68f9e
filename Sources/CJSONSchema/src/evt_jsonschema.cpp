// valijson over rapidjson behind the C API of evt_jsonschema.h. Every entry point catches
// everything: a C++ exception must never unwind into Swift.
#if !__has_include(<valijson/validator.hpp>)
#error "valijson's headers are missing: run .ci/valijson-headers (unpacks Debian's libvalijson-dev into Sources/CJSONSchema/vendor)"
#endif

#include "evt_jsonschema.h"
#include "meta_schemas.h"

// Without it, valijson prints its error to stderr and calls abort().
#define VALIJSON_USE_EXCEPTIONS 1

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <valijson/adapters/rapidjson_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <cstring>
#include <exception>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/// Parse flags for schemas and values alike: numbers keep their full precision, so that
/// `multipleOf: 0.0001` checks what the text says.
constexpr unsigned parseFlags = rapidjson::kParseFullPrecisionFlag;

/// The pool the value's document is parsed into: reset before each check, so checking a
/// stream of values reuses one block instead of growing or allocating per value.
constexpr size_t poolBytes = 64 * 1024;

void copyMessage(const std::string &message, char *out, size_t size) {
    if (out == nullptr || size == 0) return;
    size_t n = message.size() < size - 1 ? message.size() : size - 1;
    std::memcpy(out, message.data(), n);
    out[n] = '\0';
}

/// JSON text of a string, as evt's own writer quotes names and values.
std::string quoted(const std::string &text) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    return std::string(buffer.GetString(), buffer.GetSize());
}

/// `.name` where SchemaMismatch.member writes it plain (ASCII letters, digits, `_`, not
/// starting with a digit), `."odd name"` otherwise: the same rule, so paths read alike.
void appendMember(std::string &path, const std::string &name) {
    bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
            plain = false;
            break;
        }
    }
    path += '.';
    path += plain ? name : quoted(name);
}

/// `to_string(10.0)` is "10.000000": "10", and "0.500000" is "0.5".
std::string tidyNumbers(const std::string &text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        bool decimalPoint = text[i] == '.' && i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9'
            && i + 1 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '9';
        if (!decimalPoint) {
            out += text[i];
            continue;
        }
        size_t end = i + 1;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
        size_t last = end;
        while (last > i + 1 && text[last - 1] == '0') --last;
        if (last > i + 1) out.append(text, i, last - i);
        i = end - 1;
    }
    return out;
}

bool startsWith(const std::string &text, const char *prefix) {
    return text.compare(0, std::strlen(prefix), prefix) == 0;
}

/// The text between the first `'` and the last one: the name in "Missing required property 'qty'.".
std::string quotedPart(const std::string &text) {
    size_t first = text.find('\'');
    size_t last = text.rfind('\'');
    return first != std::string::npos && last > first ? text.substr(first + 1, last - first - 1) : std::string();
}

/// valijson 1.0's description of a failure, reworded as what was expected there. `found`
/// turns false for failures about members the value lacks or has: its own text adds nothing.
std::string expectation(const std::string &description, bool &found) {
    found = true;
    std::string d = tidyNumbers(description);
    if (!d.empty() && d.back() == '.') d.pop_back();
    if (startsWith(d, "Value type not permitted by 'type' constraint")) return "a value of one of the types the schema allows";
    if (startsWith(d, "Failed to match against any enum values")) return "one of the schema's enum values";
    if (startsWith(d, "Failed to match expected value set by 'const' constraint")) return "the schema's const value";
    if (startsWith(d, "Missing required property")) { found = false; return "required member " + quoted(quotedPart(d)); }
    if (startsWith(d, "Missing dependency")) { found = false; return "member " + quoted(quotedPart(d)) + ", which another member depends on"; }
    if (startsWith(d, "Object contains a property that could not be validated")) {
        found = false;
        return "no member " + quoted(quotedPart(d)) + " (the schema allows no other members)";
    }
    if (startsWith(d, "Failed to match regex specified by 'pattern' constraint")) return "a string matching the schema's pattern";
    if (startsWith(d, "Expected number ")) return "a number " + d.substr(std::strlen("Expected number "));
    if (startsWith(d, "Value should be a multiple of ")) return "a multiple of " + d.substr(std::strlen("Value should be a multiple of "));
    if (startsWith(d, "String should be no more than ")) return "a string of at most " + d.substr(30, d.find(" characters") - 30) + " characters";
    if (startsWith(d, "String should be no fewer than ")) return "a string of at least " + d.substr(31, d.find(" characters") - 31) + " characters";
    if (startsWith(d, "Array should contain no more than ")) return "an array of at most " + d.substr(34);
    if (startsWith(d, "Array should contain no fewer than ")) return "an array of at least " + d.substr(35);
    if (startsWith(d, "Object should have no more than ")) return "an object with at most " + d.substr(32);
    if (startsWith(d, "Object should have no fewer than ")) return "an object with at least " + d.substr(33);
    if (startsWith(d, "String should be a valid ")) return "a valid " + d.substr(25) + " string";
    if (startsWith(d, "Elements at indexes #")) return "unique elements (" + d + ")";
    if (startsWith(d, "Failed to validate against any schemas allowed by anyOf")) return "a value that fits at least one of the anyOf schemas";
    if (startsWith(d, "Failed to validate against any child schemas allowed by oneOf")) return "a value that fits one of the oneOf schemas";
    if (startsWith(d, "Failed to validate against exactly one child schema")) return "a value that fits exactly one of the oneOf schemas, not several";
    if (startsWith(d, "Target should not validate against schema specified in 'not'")) return "a value that does not fit the schema under 'not'";
    if (startsWith(d, "Failed to any values against subschema in 'contains'")) return "an array with an element that fits the 'contains' schema";
    if (startsWith(d, "Array contains more items than allowed")) return "no more elements than 'items' lists";
    if (startsWith(d, "Cannot validate item #")) return "no more elements than 'items' lists";
    // What valijson says, when no rewording is known: still the reason, in its words.
    return "a value that passes the schema (" + d + ")";
}

/// Short text of the value found: a scalar as JSON (long strings cut), a container by kind.
std::string describe(const rapidjson::Value &value) {
    if (value.IsObject()) return "an object";
    if (value.IsArray()) return "an array";
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    std::string text(buffer.GetString(), buffer.GetSize());
    if (text.size() > 40) {
        size_t cut = 36;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;   // not inside a UTF-8 sequence
        text = text.substr(0, cut) + (value.IsString() ? "…\"" : "…");
    }
    return text;
}

/// The schema a local `$ref` (`#/definitions/qty`) points to, followed to its end; `rule`
/// itself when it is no reference, nullptr when the reference leads out of the document.
const rapidjson::Value *resolved(const rapidjson::Value *rule, const rapidjson::Document &root) {
    for (int hops = 0; rule != nullptr && rule->IsObject() && hops < 32; ++hops) {
        auto ref = rule->FindMember("$ref");
        if (ref == rule->MemberEnd()) return rule;
        if (!ref->value.IsString() || ref->value.GetString()[0] != '#') return nullptr;
        rapidjson::Pointer pointer(ref->value.GetString(), ref->value.GetStringLength());
        rule = pointer.IsValid() ? pointer.Get(root) : nullptr;
    }
    return rule != nullptr && rule->IsObject() ? rule : nullptr;
}

/// The member `name` of an object schema, if it is an object.
const rapidjson::Value *keyword(const rapidjson::Value *rule, const char *name) {
    if (rule == nullptr || !rule->IsObject()) return nullptr;
    auto member = rule->FindMember(name);
    return member != rule->MemberEnd() ? &member->value : nullptr;
}

/// The schema for a member of an object that `rule` describes: from `properties`, else
/// `additionalProperties`; nullptr when the schema does not say plainly (patternProperties).
const rapidjson::Value *memberRule(const rapidjson::Value *rule, const std::string &name) {
    if (const rapidjson::Value *properties = keyword(rule, "properties"); properties != nullptr && properties->IsObject()) {
        auto member = properties->FindMember(rapidjson::Value(rapidjson::StringRef(name.data(), name.size())));
        if (member != properties->MemberEnd()) return &member->value;
    }
    if (const rapidjson::Value *patterns = keyword(rule, "patternProperties"); patterns != nullptr && patterns->IsObject() && patterns->MemberCount() > 0) {
        return nullptr;
    }
    return keyword(rule, "additionalProperties");
}

/// The schema for element `index` of an array that `rule` describes.
const rapidjson::Value *elementRule(const rapidjson::Value *rule, rapidjson::SizeType index) {
    const rapidjson::Value *items = keyword(rule, "items");
    if (items == nullptr || !items->IsArray()) return items;
    return index < items->Size() ? &(*items)[index] : keyword(rule, "additionalItems");
}

/// Whether `value` is of the JSON Schema type `type` (an integer may be written `1.0`).
bool isOfType(const rapidjson::Value &value, const std::string &type) {
    if (type == "integer") return value.IsInt64() || value.IsUint64() || (value.IsDouble() && value.GetDouble() == static_cast<double>(static_cast<long long>(value.GetDouble())));
    if (type == "number") return value.IsNumber();
    if (type == "string") return value.IsString();
    if (type == "object") return value.IsObject();
    if (type == "array") return value.IsArray();
    if (type == "boolean") return value.IsBool();
    if (type == "null") return value.IsNull();
    return false;
}

/// JSON text of a value from the schema, cut if long.
std::string shown(const rapidjson::Value &value) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    std::string text(buffer.GetString(), buffer.GetSize());
    return text.size() > 40 ? text.substr(0, 36) + "…" : text;
}

/// What the schema at the failing place says exactly, for the failures a user meets most
/// (type, enum, const, pattern), when its own keyword is the one that failed: `integer`,
/// `one of "new", "paid"`. Empty when that is not plain (the failure came from a subschema
/// under allOf, anyOf or a pattern, say): the caller keeps valijson's general words then.
std::string preciseExpectation(const std::string &description, const rapidjson::Value *rule, const rapidjson::Value *value) {
    if (rule == nullptr || value == nullptr) return std::string();
    if (startsWith(description, "Value type not permitted")) {
        const rapidjson::Value *type = keyword(rule, "type");
        if (type == nullptr) return std::string();
        std::vector<std::string> names;
        if (type->IsString()) names.emplace_back(type->GetString(), type->GetStringLength());
        if (type->IsArray()) {
            for (const auto &name : type->GetArray()) {
                if (name.IsString()) names.emplace_back(name.GetString(), name.GetStringLength());
            }
        }
        std::string text;
        for (const std::string &name : names) {
            if (isOfType(*value, name)) return std::string();   // this type allows it: another "type" failed
            text += (text.empty() ? "" : " or ") + name;
        }
        return text;
    }
    if (startsWith(description, "Failed to match against any enum values")) {
        const rapidjson::Value *values = keyword(rule, "enum");
        if (values == nullptr || !values->IsArray() || values->Size() == 0 || values->Size() > 10) return std::string();
        std::string text;
        for (const auto &allowed : values->GetArray()) {
            if (allowed == *value) return std::string();
            text += (text.empty() ? "one of " : ", ") + shown(allowed);
        }
        return text;
    }
    if (startsWith(description, "Failed to match expected value set by 'const'")) {
        const rapidjson::Value *constant = keyword(rule, "const");
        return constant != nullptr && !(*constant == *value) ? shown(*constant) : std::string();
    }
    if (startsWith(description, "Failed to match regex specified by 'pattern'")) {
        const rapidjson::Value *pattern = keyword(rule, "pattern");
        if (pattern == nullptr || !pattern->IsString() || !value->IsString()) return std::string();
        std::string source(pattern->GetString(), pattern->GetStringLength());
        std::string text(value->GetString(), value->GetStringLength());
        try {
            if (std::regex_search(text, std::regex(source))) return std::string();
        } catch (...) {
            return std::string();   // the message keeps valijson's words
        }
        return "a string matching " + quoted(source);
    }
    return std::string();
}

/// valijson's resolver for a `$ref` to another document: the drafts' meta-schemas, from
/// memory; anything else is an error that says what to do, as evt fetches nothing.
const rapidjson::Document *fetchDocument(const std::string &uri) {
    std::string key = uri;
    if (!key.empty() && key.back() == '#') key.pop_back();
    if (startsWith(key, "https://")) key.erase(4, 1);
    for (const MetaSchema &meta : metaSchemas) {
        if (key == meta.uri) {
            auto *document = new rapidjson::Document();
            document->Parse<parseFlags>(meta.text);
            return document;
        }
    }
    throw std::runtime_error("its $ref to " + quoted(uri) + " names another document, and evt fetches none "
                             "(only the draft 4, 6 and 7 meta-schemas are known): put what it refers to "
                             "into this schema, under \"definitions\", and refer to that");
}

void freeDocument(const rapidjson::Document *document) {
    delete document;
}

}  // namespace

struct evt_jsonschema {
    valijson::Schema schema;
    valijson::Validator validator;
    /// The schema's own text, parsed: where a message looks up what a failing keyword said.
    rapidjson::Document schemaDocument;
    char pool[poolBytes];
    rapidjson::MemoryPoolAllocator<> allocator{pool, sizeof pool};
    rapidjson::Document document{&allocator};
    std::string path, expected, found;
    bool hasFound = false;

    /// Fills path, expected and found from valijson's first error: the innermost one, as
    /// valijson reports a member's failure before the failure of the object that holds it.
    void describeFirstError(const valijson::ValidationResults::Error &error) {
        path.clear();
        const rapidjson::Value *at = &document;
        const rapidjson::Value *rule = resolved(&schemaDocument, schemaDocument);
        for (const std::string &step : error.context) {
            if (step == "<root>") continue;
            // "[name]" or "[0]": which one, the value at that point says.
            std::string inner = step.size() >= 2 ? step.substr(1, step.size() - 2) : step;
            if (at != nullptr && at->IsArray()) {
                path += step;
                char *end = nullptr;
                unsigned long index = std::strtoul(inner.c_str(), &end, 10);
                at = index < at->Size() ? &(*at)[static_cast<rapidjson::SizeType>(index)] : nullptr;
                rule = resolved(elementRule(rule, static_cast<rapidjson::SizeType>(index)), schemaDocument);
            } else {
                appendMember(path, inner);
                rule = resolved(memberRule(rule, inner), schemaDocument);
                if (at != nullptr && at->IsObject()) {
                    auto member = at->FindMember(rapidjson::Value(rapidjson::StringRef(inner.data(), inner.size())));
                    at = member != at->MemberEnd() ? &member->value : nullptr;
                } else {
                    at = nullptr;
                }
            }
        }
        if (path.empty()) path = ".";
        bool meaningful = false;
        expected = preciseExpectation(error.description, rule, at);
        if (expected.empty()) expected = expectation(error.description, meaningful);
        else meaningful = true;
        hasFound = meaningful && at != nullptr;
        if (hasFound) found = describe(*at);
    }

    void fail(const std::string &why) {
        path = ".";
        expected = why;
        hasFound = false;
    }
};

extern "C" evt_jsonschema *evt_jsonschema_compile(const char *text, size_t length, char *error, size_t error_size) {
    try {
        std::unique_ptr<evt_jsonschema> compiled(new evt_jsonschema());
        rapidjson::Document &document = compiled->schemaDocument;
        document.Parse<parseFlags>(text, length);
        if (document.HasParseError()) {
            copyMessage(std::string("the schema is not JSON: ") + rapidjson::GetParseError_En(document.GetParseError())
                        + " (at byte " + std::to_string(document.GetErrorOffset()) + ")", error, error_size);
            return nullptr;
        }
        valijson::SchemaParser::Version version = valijson::SchemaParser::kDraft7;
        if (document.IsObject()) {
            auto declared = document.FindMember("$schema");
            if (declared != document.MemberEnd() && declared->value.IsString()) {
                std::string uri(declared->value.GetString(), declared->value.GetStringLength());
                if (uri.find("draft-04") != std::string::npos) {
                    version = valijson::SchemaParser::kDraft4;
                } else if (uri.find("draft-06") == std::string::npos && uri.find("draft-07") == std::string::npos) {
                    copyMessage("the schema's $schema is " + quoted(uri) + ": evt checks JSON Schema drafts 4, 6 and 7 "
                                "(http://json-schema.org/draft-07/schema#); declare one of those", error, error_size);
                    return nullptr;
                }
            }
        }
        valijson::SchemaParser parser(version);
        valijson::adapters::RapidJsonAdapter adapter(document);
        parser.populateSchema(adapter, compiled->schema, fetchDocument, freeDocument);
        return compiled.release();
    } catch (const std::exception &e) {
        copyMessage(std::string("the schema cannot be used: ") + e.what(), error, error_size);
    } catch (...) {
        copyMessage("the schema cannot be used (valijson failed without saying why)", error, error_size);
    }
    return nullptr;
}

extern "C" void evt_jsonschema_free(evt_jsonschema *schema) {
    delete schema;
}

extern "C" evt_jsonschema_result evt_jsonschema_check(evt_jsonschema *h, const char *json, size_t length) {
    try {
        h->document.SetNull();
        h->allocator.Clear();
        h->document.Parse<parseFlags>(json, length);
        if (h->document.HasParseError()) {
            h->fail(std::string("JSON text (") + rapidjson::GetParseError_En(h->document.GetParseError())
                    + " at byte " + std::to_string(h->document.GetErrorOffset()) + ")");
            return EVT_JSONSCHEMA_NOT_JSON;
        }
        valijson::adapters::RapidJsonAdapter target(h->document);
        if (h->validator.validate(h->schema, target, nullptr)) return EVT_JSONSCHEMA_VALID;
        valijson::ValidationResults results;
        h->validator.validate(h->schema, target, &results);
        valijson::ValidationResults::Error first;
        if (results.popError(first)) {
            h->describeFirstError(first);
        } else {
            h->fail("a value that passes the schema");
        }
        return EVT_JSONSCHEMA_INVALID;
    } catch (const std::exception &e) {
        h->fail(std::string("a value the schema can check (valijson: ") + e.what() + ")");
    } catch (...) {
        h->fail("a value the schema can check (valijson failed without saying why)");
    }
    return EVT_JSONSCHEMA_UNCHECKABLE;
}

extern "C" const char *evt_jsonschema_error_path(const evt_jsonschema *h) { return h->path.c_str(); }
extern "C" const char *evt_jsonschema_error_expected(const evt_jsonschema *h) { return h->expected.c_str(); }
extern "C" const char *evt_jsonschema_error_found(const evt_jsonschema *h) { return h->hasFound ? h->found.c_str() : nullptr; }
