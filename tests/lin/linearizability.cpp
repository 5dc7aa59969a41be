#include "tests/lin/linearizability.hpp"
// Implementation in progress.
