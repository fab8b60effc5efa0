/* redis_reply.c: read-only accessors over hiredis replies. */
#include "CEventShim.h"

#include <hiredis/hiredis.h>

#define R(r) ((const redisReply *)(r))

/* The reply's kind (enum ce_reply_type, same numbers as hiredis). */
int ce_reply_type(const ce_reply *r) { return R(r)->type; }

/* Integer value of an INTEGER reply. */
long long ce_reply_integer(const ce_reply *r) { return R(r)->integer; }

/* Bytes of a STRING, STATUS or ERROR reply. */
const char *ce_reply_str(const ce_reply *r, size_t *len) {
    *len = R(r)->str ? R(r)->len : 0;
    return R(r)->str;
}

/* Element count of an ARRAY reply. */
size_t ce_reply_elements(const ce_reply *r) { return R(r)->type == REDIS_REPLY_ARRAY ? R(r)->elements : 0; }

/* Element i of an ARRAY reply. */
const ce_reply *ce_reply_element(const ce_reply *r, size_t i) { return (const ce_reply *)R(r)->element[i]; }

/* Free a reply obtained from ce_resp_parse. */
void ce_reply_free(ce_reply *r) { freeReplyObject(r); }
