/* websocket_frame.c: RFC 6455 frame headers and masking; knows nothing of I/O. */
#include "CEventShim.h"

#include <string.h>

/* Parse a frame header: 1 done, 0 need more bytes, -1 malformed length. */
int ce_ws_parse_header(const uint8_t *buf, size_t len, ce_ws_frame_info *out) {
    if (len < 2) return 0;
    out->fin = (buf[0] >> 7) & 1;
    out->rsv = (buf[0] >> 4) & 7;
    out->opcode = buf[0] & 0x0F;
    out->masked = (buf[1] >> 7) & 1;
    uint64_t plen = buf[1] & 0x7F;
    size_t pos = 2;
    if (plen == 126) {
        if (len < 4) return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126) return -1; /* non-minimal length encoding */
        pos = 4;
    } else if (plen == 127) {
        if (len < 10) return 0;
        plen = 0;
        for (int i = 0; i < 8; i++) plen = plen << 8 | buf[2 + i];
        if (plen >> 63) return -1; /* most significant bit must be 0 */
        if (plen < 65536) return -1;
        pos = 10;
    }
    if (out->masked) {
        if (len < pos + 4) return 0;
        memcpy(out->mask, buf + pos, 4);
        pos += 4;
    } else {
        memset(out->mask, 0, 4);
    }
    out->payload_len = plen;
    out->header_len = pos;
    return 1;
}

/* XOR payload bytes with the mask, starting at payload offset `offset`. */
void ce_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset) {
    for (size_t i = 0; i < len; i++) data[i] ^= mask[(offset + i) & 3];
}

/* Write a server (unmasked) frame header; returns its length (2..10). */
size_t ce_ws_write_header(uint8_t out[10], int fin, int opcode, uint64_t len) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
