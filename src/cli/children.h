// What a daemon that runs commands sets up before its first command (core/spawn.h,
// core/reaper.h, engine/run_marker.h): the reaper, the children's clean environment, and the
// sweep of what a dead predecessor left running.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace sluice::cli {

// `key` names the daemon's commands in the store ("serve", or a queuedir's path); `pass_env`
// are the variables (--pass-env) children get from the daemon's environment beyond the
// documented few.
Status PrepareChildren(Store* store, const std::string& key,
                       const std::vector<std::string>& pass_env);

}  // namespace sluice::cli
