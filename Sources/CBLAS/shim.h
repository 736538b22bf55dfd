// Debian's libopenblas-dev installs cblas.h under the multiarch include dir, which pkg-config names.
#include <cblas.h>
