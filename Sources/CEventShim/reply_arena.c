/* reply_arena.c: hiredis reply objects carved from one reusable block per
 * connection, so a reply of many elements costs no malloc per element. The
 * objects keep hiredis' redisReply layout; they live until the arena is reset. */
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_BLOCK (64 * 1024)
#define ARENA_KEEP_LIMIT (4 * 1024 * 1024)
/* An element vector this large gets its own malloc: its pages stay untouched (not resident)
   until hiredis fills them, so a header claiming many elements costs nothing until they come. */
#define ARENA_OWN_BLOCK (256 * 1024)
/* The most elements an array reply may claim: each takes 4 bytes on the wire at least, so
   this is 512 MB of reply (Redis' proto-max-bulk-len). More is a hostile or broken server. */
#define ARENA_MAX_ELEMENTS (1 << 27)

/* A block filled before the arena grew: freed at the next reset. */
typedef struct arena_spill {
    struct arena_spill *next;
    char *block;
} arena_spill;

struct ce_reply_arena {
    char *block;
    size_t size, used;
    arena_spill *spills;
    char refused[128]; /* why a reply was refused, for the link's error; "" when none */
};

/* A new, empty arena (no block until the first object). */
ce_reply_arena *ce_reply_arena_new(void) { return calloc(1, sizeof(ce_reply_arena)); }

/* Keep block to free at the next reset; 0, or -1 when out of memory. */
static int arena_spill_block(ce_reply_arena *a, char *block) {
    arena_spill *s = malloc(sizeof(*s));
    if (!s) return -1;
    s->block = block;
    s->next = a->spills;
    a->spills = s;
    return 0;
}

/* n bytes in a block of their own, freed at the next reset; NULL when out of memory. */
static void *arena_take_own(ce_reply_arena *a, size_t n) {
    char *b = malloc(n);
    if (b && arena_spill_block(a, b) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

/* Room for n bytes, 16-byte aligned; NULL when out of memory. */
static void *arena_take(ce_reply_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (a->used + n > a->size) {
        size_t size = a->size ? a->size * 2 : ARENA_FIRST_BLOCK;
        while (size < n) size *= 2;
        char *b = malloc(size);
        if (!b) return NULL;
        if (a->block && arena_spill_block(a, a->block) != 0) {
            free(b);
            return NULL;
        }
        a->block = b;
        a->size = size;
        a->used = 0;
    }
    void *p = a->block + a->used;
    a->used += n;
    return p;
}

/* Forget every object; spilled blocks, and a block grown past the keep limit, are freed. */
void ce_reply_arena_reset(ce_reply_arena *a) {
    while (a->spills) {
        arena_spill *s = a->spills;
        a->spills = s->next;
        free(s->block);
        free(s);
    }
    if (a->size > ARENA_KEEP_LIMIT) {
        free(a->block);
        a->block = NULL;
        a->size = 0;
    }
    a->used = 0;
    a->refused[0] = '\0';
}

/* Free the arena and its blocks. */
void ce_reply_arena_free(ce_reply_arena *a) {
    if (!a) return;
    ce_reply_arena_reset(a);
    free(a->block);
    free(a);
}

/* A zeroed reply of `type`, linked into its parent array. */
static redisReply *arena_object(const redisReadTask *task, int type) {
    redisReply *r = arena_take(task->privdata, sizeof(*r));
    if (!r) return NULL;
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent) ((redisReply *)task->parent->obj)->element[task->idx] = r;
    return r;
}

/* A STRING, STATUS or ERROR reply, its bytes copied and NUL-terminated. */
static void *arena_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = arena_object(task, task->type);
    char *s = r ? arena_take(task->privdata, len + 1) : NULL;
    if (!s) return NULL;
    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return r;
}

/* An ARRAY reply with room for its elements (not zeroed: hiredis fills every slot before the
   reply is handed out). A count past ARENA_MAX_ELEMENTS is refused: NULL, the reason kept. */
static void *arena_array(const redisReadTask *task, int elements) {
    ce_reply_arena *a = task->privdata;
    if (elements > ARENA_MAX_ELEMENTS) {
        snprintf(a->refused, sizeof(a->refused),
                 "Protocol error: the server sent an array of %d elements (at most %d)", elements,
                 ARENA_MAX_ELEMENTS);
        return NULL;
    }
    redisReply *r = arena_object(task, REDIS_REPLY_ARRAY);
    if (!r || elements <= 0) return r;
    size_t size = (size_t)elements * sizeof(redisReply *);
    r->element = size >= ARENA_OWN_BLOCK ? arena_take_own(a, size) : arena_take(a, size);
    if (!r->element) return NULL;
    r->elements = (size_t)elements;
    return r;
}

/* An INTEGER reply. */
static void *arena_integer(const redisReadTask *task, long long value) {
    redisReply *r = arena_object(task, REDIS_REPLY_INTEGER);
    if (r) r->integer = value;
    return r;
}

/* A NIL reply. */
static void *arena_nil(const redisReadTask *task) { return arena_object(task, REDIS_REPLY_NIL); }

/* Objects go with the arena's block, never one by one. */
static void arena_free_object(void *obj) { (void)obj; }

static redisReplyObjectFunctions arena_functions = {
    arena_string, arena_array, arena_integer, arena_nil, arena_free_object,
};

/* Why the arena refused the reply `reader` was reading, or NULL (not refused, or not an arena's). */
const char *ce_reply_arena_refusal(const struct redisReader *reader) {
    if (reader->fn != &arena_functions) return NULL;
    const ce_reply_arena *a = reader->privdata;
    return a && a->refused[0] ? a->refused : NULL;
}

/* Make `reader` build its replies in `a`. */
void ce_reply_arena_attach(ce_reply_arena *a, struct redisReader *reader) {
    reader->fn = &arena_functions;
    reader->privdata = a;
}
