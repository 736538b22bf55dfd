// libtiff reads through client procedures; these read from a buffer in memory.
#include <tiffio.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    toff_t size;
    toff_t offset;
} cd_tiff_source;

static inline tmsize_t cd_tiff_read(thandle_t handle, void *out, tmsize_t count) {
    cd_tiff_source *source = (cd_tiff_source *)handle;
    if (count < 0 || source->offset >= source->size) return 0;
    toff_t left = source->size - source->offset;
    tmsize_t n = (toff_t)count < left ? count : (tmsize_t)left;
    memcpy(out, source->data + source->offset, (size_t)n);
    source->offset += (toff_t)n;
    return n;
}

static inline tmsize_t cd_tiff_write(thandle_t handle, void *in, tmsize_t count) {
    (void)handle; (void)in; (void)count;
    return -1;
}

static inline toff_t cd_tiff_seek(thandle_t handle, toff_t offset, int whence) {
    cd_tiff_source *source = (cd_tiff_source *)handle;
    toff_t base = whence == SEEK_CUR ? source->offset : whence == SEEK_END ? source->size : 0;
    source->offset = base + offset;
    return source->offset;
}

static inline int cd_tiff_close(thandle_t handle) { (void)handle; return 0; }

static inline toff_t cd_tiff_size(thandle_t handle) { return ((cd_tiff_source *)handle)->size; }

static inline int cd_tiff_map(thandle_t handle, void **base, toff_t *size) { (void)handle; (void)base; (void)size; return 0; }

static inline void cd_tiff_unmap(thandle_t handle, void *base, toff_t size) { (void)handle; (void)base; (void)size; }

/// Swallows one handle's messages (returning 1 keeps libtiff's process-wide handlers out of it).
static inline int cd_tiff_quiet(TIFF *tiff, void *user, const char *module, const char *format, va_list arguments) {
    (void)tiff; (void)user; (void)module; (void)format; (void)arguments;
    return 1;
}

/// Opens a TIFF held in memory with handlers of its own (no process-wide state is changed; errors
/// come back as return values) and a cap on any single allocation libtiff makes for it.
static inline TIFF *cd_tiff_open(cd_tiff_source *source, tmsize_t max_allocation) {
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (options == NULL) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(options, cd_tiff_quiet, NULL);
    TIFFOpenOptionsSetWarningHandlerExtR(options, cd_tiff_quiet, NULL);
    TIFFOpenOptionsSetMaxSingleMemAlloc(options, max_allocation);
    TIFF *tiff = TIFFClientOpenExt("memory", "rm", (thandle_t)source, cd_tiff_read, cd_tiff_write, cd_tiff_seek,
                                   cd_tiff_close, cd_tiff_size, cd_tiff_map, cd_tiff_unmap, options);
    TIFFOpenOptionsFree(options);
    return tiff;
}

static inline uint32_t cd_tiff_get_u32(TIFF *tiff, uint32_t tag) {
    uint32_t value = 0;
    TIFFGetField(tiff, tag, &value);
    return value;
}

static inline uint16_t cd_tiff_get_u16(TIFF *tiff, uint32_t tag, uint16_t fallback) {
    uint16_t value = fallback;
    TIFFGetFieldDefaulted(tiff, tag, &value);
    return value;
}

static inline int cd_tiff_colormap(TIFF *tiff, uint16_t **red, uint16_t **green, uint16_t **blue) {
    return TIFFGetField(tiff, TIFFTAG_COLORMAP, red, green, blue);
}

static inline int cd_tiff_extra_samples(TIFF *tiff, uint16_t *count, uint16_t **types) {
    return TIFFGetField(tiff, TIFFTAG_EXTRASAMPLES, count, types);
}
