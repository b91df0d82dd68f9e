// libavro 1.11 (Debian's libavro-dev), for Avro payloads framed by a schema registry. Its
// value API is macros over each value's interface table, which Swift cannot import: these
// wrappers give the ones evt uses a function's shape (and the schema's type tag, a macro too).
#include <avro.h>

static inline avro_type_t evt_avro_schema_type(avro_schema_t schema) { return avro_typeof(schema); }

static inline void evt_avro_class_decref(avro_value_iface_t *iface) { avro_value_iface_decref(iface); }

static inline int evt_avro_reset(avro_value_t *value) { return avro_value_reset(value); }

// Getters (decoding: a value read from a payload, walked into JSON).
static inline int evt_avro_get_boolean(const avro_value_t *value, int *out) { return avro_value_get_boolean(value, out); }
static inline int evt_avro_get_int(const avro_value_t *value, int32_t *out) { return avro_value_get_int(value, out); }
static inline int evt_avro_get_long(const avro_value_t *value, int64_t *out) { return avro_value_get_long(value, out); }
static inline int evt_avro_get_float(const avro_value_t *value, float *out) { return avro_value_get_float(value, out); }
static inline int evt_avro_get_double(const avro_value_t *value, double *out) { return avro_value_get_double(value, out); }
// `size` counts the terminating NUL that libavro keeps after the string.
static inline int evt_avro_get_string(const avro_value_t *value, const char **str, size_t *size) { return avro_value_get_string(value, str, size); }
static inline int evt_avro_get_bytes(const avro_value_t *value, const void **buf, size_t *size) { return avro_value_get_bytes(value, buf, size); }
static inline int evt_avro_get_fixed(const avro_value_t *value, const void **buf, size_t *size) { return avro_value_get_fixed(value, buf, size); }
static inline int evt_avro_get_enum(const avro_value_t *value, int *out) { return avro_value_get_enum(value, out); }
static inline int evt_avro_get_size(const avro_value_t *value, size_t *size) { return avro_value_get_size(value, size); }
// Records: the field at `index`; arrays: the element; maps: the entry, its key in `name`.
static inline int evt_avro_get_by_index(const avro_value_t *value, size_t index, avro_value_t *child, const char **name) {
    return avro_value_get_by_index(value, index, child, name);
}
static inline int evt_avro_get_discriminant(const avro_value_t *value, int *out) { return avro_value_get_discriminant(value, out); }
static inline int evt_avro_get_current_branch(const avro_value_t *value, avro_value_t *branch) { return avro_value_get_current_branch(value, branch); }

// Setters (encoding: a value built from JSON, then written).
static inline int evt_avro_set_null(avro_value_t *value) { return avro_value_set_null(value); }
static inline int evt_avro_set_boolean(avro_value_t *value, int val) { return avro_value_set_boolean(value, val); }
static inline int evt_avro_set_int(avro_value_t *value, int32_t val) { return avro_value_set_int(value, val); }
static inline int evt_avro_set_long(avro_value_t *value, int64_t val) { return avro_value_set_long(value, val); }
static inline int evt_avro_set_float(avro_value_t *value, float val) { return avro_value_set_float(value, val); }
static inline int evt_avro_set_double(avro_value_t *value, double val) { return avro_value_set_double(value, val); }
// `size` counts a terminating NUL, which `str` must have.
static inline int evt_avro_set_string_len(avro_value_t *value, const char *str, size_t size) { return avro_value_set_string_len(value, str, size); }
static inline int evt_avro_set_bytes(avro_value_t *value, void *buf, size_t size) { return avro_value_set_bytes(value, buf, size); }
static inline int evt_avro_set_fixed(avro_value_t *value, void *buf, size_t size) { return avro_value_set_fixed(value, buf, size); }
static inline int evt_avro_set_enum(avro_value_t *value, int val) { return avro_value_set_enum(value, val); }
static inline int evt_avro_append(avro_value_t *value, avro_value_t *child) { return avro_value_append(value, child, NULL); }
// The entry for `key` (NUL-terminated), new or the one already there.
static inline int evt_avro_add(avro_value_t *value, const char *key, avro_value_t *child) { return avro_value_add(value, key, child, NULL, NULL); }
static inline int evt_avro_set_branch(avro_value_t *value, int discriminant, avro_value_t *branch) { return avro_value_set_branch(value, discriminant, branch); }
