/* ws_frame_fuzzer.c: libFuzzer target for the pure RFC 6455 frame decoder:
 * header parsing, unmasking and UTF-8 validation over a byte stream. */
#include "CEventShim.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t pos = 0;
    while (pos < size) {
        ce_ws_frame_info fi;
        int r = ce_ws_parse_header(data + pos, size - pos, &fi);
        if (r <= 0) break;
        if (fi.header_len > size - pos) abort(); /* the decoder must never claim more than it saw */
        pos += fi.header_len;
        size_t n = fi.payload_len < size - pos ? (size_t)fi.payload_len : size - pos;
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, data + pos, n);
        ce_ws_unmask(copy, n, fi.mask, 0);
        (void)ce_utf8_valid(copy, n);
        uint8_t head[10];
        size_t hl = ce_ws_write_header(head, fi.fin, fi.opcode, n);
        if (hl < 2 || hl > 10) abort();
        ce_ws_frame_info back;
        if (ce_ws_parse_header(head, hl, &back) != 1 || back.payload_len != n || back.masked) abort();
        free(copy);
        pos += n;
    }
    char accept[29];
    ce_ws_accept_key((const char *)data, size < 256 ? size : 256, accept);
    if (strlen(accept) != 28) abort();
    return 0;
}
