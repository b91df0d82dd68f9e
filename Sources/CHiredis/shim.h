#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

/* The reply arena below is written against hiredis 0.14's parser: it fills every member of
 * redisReplyObjectFunctions that 0.14 has (1.x adds createDouble and createBool, and sends
 * maps, sets and pushes through createArray, which here always makes an ARRAY), sets the
 * redisReader's fn and privdata, and links a reply into task->parent->obj at task->idx.
 * RedisReplyView (RedisConnection.swift) reads the redisReply structs it builds. Another
 * hiredis must be checked against these before this pin is widened. */
#if !defined(HIREDIS_MAJOR) || !defined(HIREDIS_MINOR) || HIREDIS_MAJOR != 0 || HIREDIS_MINOR != 14
#error "evt's reply arena (Sources/CHiredis/shim.h) is written for hiredis 0.14 (libhiredis-dev 0.14.x) and this is another version: install libhiredis-dev 0.14, or check the arena against this hiredis' read.h and widen the pin"
#endif

/* Reply objects carved from one arena per connection. hiredis' own reply functions take a
 * malloc for every string and array, some 40 for a stream entry of 8 fields, and a free for
 * each afterwards: 60 % of the instructions of a stream tail (callgrind). Here they are the
 * same redisReply structs, bump-allocated; evt_reply_release drops a whole reply at once.
 * evt handles one reply at a time per connection and releases it before asking for the
 * next, which is all this needs. */

typedef struct evt_arena_chunk {
    struct evt_arena_chunk *next;
    size_t size, used;
    _Alignas(16) char bytes[];
} evt_arena_chunk;

typedef struct evt_reply_arena {
    redisReplyObjectFunctions functions;  /* the reader's fn points here */
    evt_arena_chunk *base;                /* kept from reply to reply */
    evt_arena_chunk *overflow;            /* taken when base was full, newest first */
} evt_reply_arena;

/* A reply bigger than this takes extra chunks each time: memory stays bounded. */
#define EVT_ARENA_KEEP (8u << 20)
#define EVT_ARENA_MIN_CHUNK (64u << 10)

static inline evt_arena_chunk *evt_arena_chunk_new(size_t size) {
    evt_arena_chunk *chunk = malloc(sizeof(evt_arena_chunk) + size);
    if (chunk) { chunk->next = NULL; chunk->size = size; chunk->used = 0; }
    return chunk;
}

static inline void *evt_arena_take(evt_reply_arena *arena, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    evt_arena_chunk *chunk = arena->overflow ? arena->overflow : arena->base;
    if (chunk->size - chunk->used < bytes) {
        size_t size = chunk->size < EVT_ARENA_KEEP / 2 ? chunk->size * 2 : EVT_ARENA_KEEP;
        if (size < bytes) size = bytes;
        if (!(chunk = evt_arena_chunk_new(size))) return NULL;
        chunk->next = arena->overflow;
        arena->overflow = chunk;
    }
    void *taken = chunk->bytes + chunk->used;
    chunk->used += bytes;
    return taken;
}

/* Drops the reply built last. When it did not fit in the base chunk, the base grows to what
 * it took (up to EVT_ARENA_KEEP), so that the next reply of that size fits in one chunk. */
static inline void evt_reply_arena_reset(evt_reply_arena *arena) {
    size_t total = arena->base->size;
    while (arena->overflow) {
        evt_arena_chunk *next = arena->overflow->next;
        total += arena->overflow->size;
        free(arena->overflow);
        arena->overflow = next;
    }
    if (total > arena->base->size && arena->base->size < EVT_ARENA_KEEP) {
        evt_arena_chunk *bigger = evt_arena_chunk_new(total < EVT_ARENA_KEEP ? total : EVT_ARENA_KEEP);
        if (bigger) { free(arena->base); arena->base = bigger; }
    }
    arena->base->used = 0;
}

static inline redisReply *evt_reply_new(const redisReadTask *task, int type) {
    redisReply *reply = evt_arena_take(task->privdata, sizeof(redisReply));
    if (!reply) return NULL;
    memset(reply, 0, sizeof *reply);
    reply->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = reply;
    }
    return reply;
}

static inline void *evt_reply_string(const redisReadTask *task, char *str, size_t len) {
    char *copy = evt_arena_take(task->privdata, len + 1);
    if (!copy) return NULL;
    memcpy(copy, str, len);
    copy[len] = 0;
    redisReply *reply = evt_reply_new(task, task->type);
    if (!reply) return NULL;
    reply->str = copy;
    reply->len = len;
    return reply;
}

static inline void *evt_reply_array(const redisReadTask *task, int elements) {
    redisReply **element = NULL;
    if (elements > 0 && !(element = evt_arena_take(task->privdata, (size_t)elements * sizeof(redisReply *)))) return NULL;
    redisReply *reply = evt_reply_new(task, REDIS_REPLY_ARRAY);
    if (!reply) return NULL;
    reply->element = element;
    reply->elements = elements > 0 ? (size_t)elements : 0;
    return reply;
}

static inline void *evt_reply_integer(const redisReadTask *task, long long value) {
    redisReply *reply = evt_reply_new(task, REDIS_REPLY_INTEGER);
    if (reply) reply->integer = value;
    return reply;
}

static inline void *evt_reply_nil(const redisReadTask *task) {
    return evt_reply_new(task, REDIS_REPLY_NIL);
}

/* hiredis frees a reply it gave up on (a protocol error, or the context freed mid-reply). */
static inline void evt_reply_drop(void *reply) { (void)reply; }

/* Gives the context's parser an arena of its own; 0 when out of memory. */
static inline int evt_reply_arena_attach(redisContext *context) {
    evt_reply_arena *arena = calloc(1, sizeof *arena);
    if (!arena || !(arena->base = evt_arena_chunk_new(EVT_ARENA_MIN_CHUNK))) { free(arena); return 0; }
    arena->functions.createString = evt_reply_string;
    arena->functions.createArray = evt_reply_array;
    arena->functions.createInteger = evt_reply_integer;
    arena->functions.createNil = evt_reply_nil;
    arena->functions.freeObject = evt_reply_drop;
    context->reader->fn = &arena->functions;
    context->reader->privdata = arena;
    return 1;
}

/* The reply last handed out is done with. */
static inline void evt_reply_release(redisContext *context) {
    evt_reply_arena_reset(context->reader->privdata);
}

/* redisFree, and the arena with it (a context without one is freed all the same). */
static inline void evt_redis_free(redisContext *context) {
    evt_reply_arena *arena = context->reader ? context->reader->privdata : NULL;
    redisFree(context);
    if (arena) {
        evt_reply_arena_reset(arena);
        free(arena->base);
        free(arena);
    }
}
