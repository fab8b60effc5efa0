/* shim_internal.h: declarations shared by the shim's .c files only. */
#ifndef CE_SHIM_INTERNAL_H
#define CE_SHIM_INTERNAL_H

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

struct ce_loop;

/* The libevent base behind a loop. */
struct event_base *ce_loop_base(struct ce_loop *loop);

/* SHA-1 of data into out[20]. */
void ce_sha1(const uint8_t *data, size_t len, uint8_t out[20]);
/* Standard base64 of len bytes into out (needs 4*ceil(len/3)+1); returns length. */
size_t ce_base64_encode(const uint8_t *in, size_t len, char *out);

#endif
