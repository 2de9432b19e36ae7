// Process limits set once at start.
#pragma once

#include <cstdint>

namespace sluice {

// Raises the soft limit on open descriptors to the hard limit, so a crowd of clients (or of
// event readers) meets the limit the administrator set, not the shell's default of 1024.
// Returns the soft limit now in force.
uint64_t RaiseDescriptorLimit();
// The soft limit before RaiseDescriptorLimit (what children get back: core/spawn.h); 0 when
// it was not raised.
uint64_t OriginalDescriptorLimit();

}  // namespace sluice
