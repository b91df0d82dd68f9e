// OpenSSL 3 (Debian's libssl-dev), for Redis over TLS. Some of its calls are macros, which
// Swift cannot import: these wrappers give them a function's shape.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static inline long evt_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

// Partial writes let a non-blocking SSL_write report progress record by record; a moving
// buffer lets the retry after SSL_ERROR_WANT_WRITE come from another address.
static inline long evt_ssl_ctx_set_nonblocking_modes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

// Reads ahead of the current record, so one read(2) can bring several records.
static inline void evt_ssl_ctx_set_read_ahead(SSL_CTX *ctx) {
    SSL_CTX_set_read_ahead(ctx, 1);
}

static inline long evt_ssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline int evt_err_reason(unsigned long code) {
    return ERR_GET_REASON(code);
}
