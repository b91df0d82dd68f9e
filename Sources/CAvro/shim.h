// libavro 1.11 (Debian's libavro-dev), for Avro payloads framed by a schema registry: it
// parses schemas, which evt then walks itself (Sources/EvtCore/Codec/Schema). A schema's type
// tag is read through a macro, which Swift cannot import: this wrapper gives it a function's
// shape.
#include <avro.h>

static inline avro_type_t evt_avro_schema_type(avro_schema_t schema) { return avro_typeof(schema); }
