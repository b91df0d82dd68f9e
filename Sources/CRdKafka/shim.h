#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* rd_kafka_producev is variadic and its RD_KAFKA_V_* arguments are macros: neither imports
 * into Swift. This one non-variadic call covers every field evt sends. `headers` may be NULL;
 * on success librdkafka owns it, on failure the caller still does. A timestamp of 0 lets the
 * broker/client assign one. */
static inline rd_kafka_resp_err_t evt_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                                              int32_t partition,
                                              const void *value, size_t value_len,
                                              const void *key, size_t key_len,
                                              rd_kafka_headers_t *headers,
                                              int64_t timestamp, void *opaque) {
    if (headers == NULL)
        return rd_kafka_producev(rk,
                                 RD_KAFKA_V_RKT(rkt),
                                 RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_VALUE((void *)value, value_len),
                                 RD_KAFKA_V_KEY(key, key_len),
                                 RD_KAFKA_V_TIMESTAMP(timestamp),
                                 RD_KAFKA_V_OPAQUE(opaque),
                                 RD_KAFKA_V_END);
    return rd_kafka_producev(rk,
                             RD_KAFKA_V_RKT(rkt),
                             RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_VALUE((void *)value, value_len),
                             RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_HEADERS(headers),
                             RD_KAFKA_V_TIMESTAMP(timestamp),
                             RD_KAFKA_V_OPAQUE(opaque),
                             RD_KAFKA_V_END);
}
