// oneDNN from Debian's libdnnl-dev (no pkg-config file: linked by name).
#include <dnnl.h>

// Debian builds oneDNN on GNU OpenMP. The encoder calls oneDNN from its own workers, one column
// block each, so each worker asks for a team of one. (libgomp's omp.h is not on Swift's path.)
void omp_set_num_threads(int);
