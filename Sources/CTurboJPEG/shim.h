// The TurboJPEG API reports errors by return code, so Swift can call it without setjmp.
#include <turbojpeg.h>
