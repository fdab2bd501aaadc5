/* Proves a toolchain: statically linked against zlib and liblzma, it round-trips a text
 * through both and prints the library versions it runs with. The toolkit links it with
 * --whole-archive, so every object of both archives must resolve against the C library. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <lzma.h>

int main(void) {
    static const unsigned char text[] = "kexec-bin toolchain probe: zlib and liblzma round trip";
    unsigned char packed[256], unpacked[256];
    uLongf packed_len = sizeof packed, unpacked_len = sizeof unpacked;
    if (compress(packed, &packed_len, text, sizeof text) != Z_OK
        || uncompress(unpacked, &unpacked_len, packed, packed_len) != Z_OK
        || unpacked_len != sizeof text || memcmp(text, unpacked, sizeof text) != 0) {
        puts("zlib round trip failed");
        return 1;
    }
    size_t xz_len = 0, in_pos = 0, out_pos = 0;
    uint64_t memlimit = UINT64_MAX;
    if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, text, sizeof text, packed, &xz_len, sizeof packed) != LZMA_OK
        || lzma_stream_buffer_decode(&memlimit, 0, NULL, packed, &in_pos, xz_len, unpacked, &out_pos, sizeof unpacked) != LZMA_OK
        || out_pos != sizeof text || memcmp(text, unpacked, sizeof text) != 0) {
        puts("lzma round trip failed");
        return 1;
    }
    printf("zlib %s lzma %s\n", zlibVersion(), lzma_version_string());
    return 0;
}
