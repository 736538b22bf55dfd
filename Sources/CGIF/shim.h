// giflib reports errors by return code; reading from memory goes through a callback.
#include <gif_lib.h>
