// glibc malloc settings; see allocator.h for the measurement behind them.
#include "core/allocator.h"

#include <malloc.h>

namespace sluice {

void TuneAllocator() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void ReturnFreeMemory() { malloc_trim(0); }

}  // namespace sluice
