// TakeRunMarker: read the predecessor's record, sweep its commands, write ours.
#include "engine/run_marker.h"

#include <unistd.h>

#include <sstream>

#include "core/orphans.h"
#include "core/spdlog.h"

namespace sluice {
namespace {

constexpr const char* kNs = "exec.run_marker";  // key -> "marker boot_id pid start_ticks"

}  // namespace

Result<std::string> TakeRunMarker(Store* store, const std::string& key) {
  auto prev = store->GetValue(kNs, key);
  if (!prev.ok()) return prev.status();
  std::string boot = BootId();
  if (prev->has_value()) {
    std::istringstream in(**prev);
    std::string marker, prev_boot;
    long pid = 0;
    uint64_t start = 0;
    in >> marker >> prev_boot >> pid >> start;
    bool alive = pid > 0 && ProcessStartTicks(static_cast<pid_t>(pid)) == start && start != 0 &&
                 pid != ::getpid();
    if (prev_boot != boot) {
      // A reboot ended everything it ran.
    } else if (alive) {
      spdlog::warn(
          "another daemon (pid {}) still runs commands from this store; its commands are "
          "left alone",
          pid);
    } else {
      auto killed = KillMarked(marker, 10);
      if (!killed.ok()) return killed.status();
      if (*killed > 0) {
        spdlog::warn(
            "killed {} processes the previous daemon (pid {}) left running; their jobs "
            "count as interrupted and run again",
            *killed, pid);
      }
    }
  }
  std::string marker = NewRunMarker();
  std::string record = marker + " " + boot + " " + std::to_string(::getpid()) + " " +
                       std::to_string(ProcessStartTicks(::getpid()));
  SLUICE_RETURN_IF_ERROR(store->PutValue(kNs, key, record));
  return marker;
}

}  // namespace sluice
