// The run marker of a daemon's commands (core/orphans.h), kept in the store so that the next
// daemon on the same store knows what its predecessor's commands carry.
#pragma once

#include <string>

#include "core/status.h"
#include "store/store.h"

namespace sluice {

// Takes a new marker for the daemon that runs commands under `key` ("serve", or a queuedir's
// path for a command runner) and records it with this process's identity. When the previous
// holder of `key` died on this boot (it is no longer running) with commands running, those
// are killed first and the count is logged; when it still runs, its commands are left alone.
// FailedPrecondition when some cannot be killed (nothing may start beside them).
Result<std::string> TakeRunMarker(Store* store, const std::string& key);

}  // namespace sluice
