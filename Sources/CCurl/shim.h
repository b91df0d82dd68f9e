// libcurl (Debian's libcurl4-openssl-dev), for the schema registry's REST API. Its
// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these
// wrappers give the few options evt sets a typed function each.
#include <curl/curl.h>

static inline CURLcode evt_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

// String options are copied by libcurl (CURLOPT_COPYPOSTFIELDS included); NULL unsets one.
static inline CURLcode evt_curl_set_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode evt_curl_set_pointer(CURL *curl, CURLoption option, void *value) {
    return curl_easy_setopt(curl, option, value);
}

typedef size_t (*evt_curl_write_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode evt_curl_set_write_callback(CURL *curl, evt_curl_write_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, callback);
    return code != CURLE_OK ? code : curl_easy_setopt(curl, CURLOPT_WRITEDATA, context);
}

typedef int (*evt_curl_progress_callback)(void *context, curl_off_t downloadTotal, curl_off_t downloaded,
                                          curl_off_t uploadTotal, curl_off_t uploaded);

// Called about once a second while a request waits, and more often while bytes flow; a
// non-zero return aborts the request (CURLE_ABORTED_BY_CALLBACK).
static inline CURLcode evt_curl_set_progress_callback(CURL *curl, evt_curl_progress_callback callback) {
    CURLcode code = curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, callback);
    return code != CURLE_OK ? code : curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}

// CURLAUTH_BASIC is a cast expression, which Swift does not import.
static inline CURLcode evt_curl_use_basic_auth(CURL *curl) {
    return curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
}

static inline long evt_curl_response_code(CURL *curl) {
    long code = 0;
    return curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK ? code : 0;
}
