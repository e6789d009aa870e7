// tests/stack/count_new.h — a counting replacement of global operator new, for the tests and the
// benchmark that assert "no allocation on the fast path". Link count_new.cc into the binary.
#pragma once

#include <cstddef>

namespace xmit::testing_support {

// How many times any form of operator new ran in this process so far (single-threaded use).
size_t operator_new_calls();

}  // namespace xmit::testing_support
