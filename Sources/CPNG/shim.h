// libpng reports errors by longjmp, which Swift cannot catch: each call that can fail goes
// through one of these wrappers, which owns the setjmp and turns an error into a return code.
#include <png.h>
#include <setjmp.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[160];
} cd_png_source;

static inline void cd_png_read(png_structp png, png_bytep out, size_t count) {
    cd_png_source *source = (cd_png_source *)png_get_io_ptr(png);
    if (count > source->size - source->offset) {
        png_error(png, "file is truncated");
    }
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

static inline void cd_png_error(png_structp png, png_const_charp message) {
    cd_png_source *source = (cd_png_source *)png_get_error_ptr(png);
    strncpy(source->message, message, sizeof(source->message) - 1);
    source->message[sizeof(source->message) - 1] = 0;
    png_longjmp(png, 1);
}

static inline void cd_png_warning(png_structp png, png_const_charp message) {
    (void)png; (void)message;
}

/// Reads the header. Returns 0 on success, leaving the caller to free with png_destroy_read_struct.
static inline int cd_png_read_info(png_structp png, png_infop info, cd_png_source *source) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_read_fn(png, source, cd_png_read);
    png_set_error_fn(png, source, cd_png_error, cd_png_warning);
    // Pillow does not check the CRC of ancillary chunks either.
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    png_read_info(png, info);
    return 0;
}

/// Applies the transforms set by the caller and reads every row into `rows`.
static inline int cd_png_read_image(png_structp png, png_infop info, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_read_update_info(png, info);
    png_read_image(png, rows);
    return 0;
}

static inline png_structp cd_png_create(cd_png_source *source) {
    return png_create_read_struct(PNG_LIBPNG_VER_STRING, source, cd_png_error, cd_png_warning);
}
