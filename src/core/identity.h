// A name for this process that no other process takes, on this machine or another:
// "HOST:PID:RANDOM" (the consumer name in a Redis group, the owner of a lease).
#pragma once

#include <string>

namespace sluice {

std::string UniqueProcessName();

}  // namespace sluice
