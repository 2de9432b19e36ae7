// PrepareChildren: reaper first (a command may start right after), then the marker.
#include "cli/children.h"

#include "core/limits.h"
#include "core/reaper.h"
#include "core/spawn.h"
#include "engine/run_marker.h"

namespace sluice::cli {

Status PrepareChildren(Store* store, const std::string& key,
                       const std::vector<std::string>& pass_env) {
  SLUICE_RETURN_IF_ERROR(Reaper::Start());
  auto marker = TakeRunMarker(store, key);
  if (!marker.ok()) return marker.status();
  ConfigureChildren(pass_env, *marker, OriginalDescriptorLimit());
  return Status::Ok();
}

}  // namespace sluice::cli
