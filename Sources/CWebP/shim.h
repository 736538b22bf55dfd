// libwebp's decoder and encoder, plus the demux library's animation decoder, which Pillow uses for every WebP.
#include <webp/decode.h>
#include <webp/encode.h>
#include <webp/demux.h>
