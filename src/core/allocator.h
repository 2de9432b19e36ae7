// Process-wide allocator tuning, called once at start by the binary and the benchmarks.
#pragma once

namespace sluice {

// Keeps glibc from returning large blocks (file buffers, parse pools) to the kernel after each
// job: with the default dynamic mmap threshold every multi-megabyte submission was read into
// fresh pages, and page faults took a quarter of a corpus drain (measured with perf; the
// 500-file corpus went from 1.21 s to 0.80 s with 5 workers on 2 cores).
void TuneAllocator();

// Gives the free memory of every arena back to the kernel (malloc_trim). A worker that has
// handled a large file calls it: what the file took stays free in that thread's arena
// otherwise, and five workers that each once read a large file kept five files' worth.
void ReturnFreeMemory();

}  // namespace sluice
