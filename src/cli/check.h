// `sluice check`: a Nagios plugin for one spool, or one queuedir (new/ cur/ dead/: pending is
// new/, in progress is cur/, failed is dead/). It reads the spool directory and the store
// directly, so it answers while the daemon is down.
//
//   CRITICAL  anything in failed/ (dead); pending or in-progress counts at their critical
//             thresholds; no daemon heartbeat newer than --heartbeat-age
//   WARNING   pending or in-progress counts at their warning thresholds; the oldest pending
//             file older than -t seconds
//   UNKNOWN   the spool or the database cannot be read
//
// One line: "SLUICE OK|WARNING|CRITICAL|UNKNOWN - <what> | <perfdata>", exit 0/1/2/3.
//
// Queuedirs given as arguments (`sluice check -w 50 -c 100 -t 900 DIR...`) are checked as
// Mozilla's check_queuedir.py checks them, from the directories alone (no database, no
// daemon): the same counts, thresholds, line ("Ok", or its messages joined by ";") and exit
// code; --perfdata adds perfdata, --heartbeat-age a daemon heartbeat check.
//
// With --broker (alone, or beside a spool), the cluster's streams are checked too: any dead
// letter is CRITICAL; an entry handed out and neither acknowledged nor renewed for more than
// -t seconds (a worker stuck or gone) is WARNING; Redis unreachable is UNKNOWN.
#pragma once

#include <string>
#include <vector>

#include "store/store.h"

namespace sluice::cli {

struct CheckFlags {
  std::string spool_dir;
  std::vector<std::string> queuedirs;  // check_queuedir.py's arguments
  bool perfdata = false;               // queuedirs: add perfdata to the line
  bool heartbeat_given = false;        // queuedirs: --heartbeat-age was given
  std::string config;                  // with spool_name or all: the daemon's config file
  std::string spool_name;              // one [spool.NAME] of it
  bool all = false;                    // every spool of it, in one line
  std::string database;  // default: sqlite:DIR/sluice.db for a queuedir, else sqlite:sluice.db
  StoreOptions store;
  long warn_pending = 50;
  long crit_pending = 100;
  long warn_cur = 50;
  long crit_cur = 100;
  double max_age_s = 900;
  double heartbeat_age_s = 120;
  // A cluster's Redis (`--broker`): dead letters are CRITICAL, a ticket handed out and not
  // renewed for longer than -t is WARNING.
  std::string broker;
  std::string broker_prefix = "sluice";
};

int RunCheck(const CheckFlags& flags);

// The daemon writes the time (wall micros) into the store's kv map every few seconds, under
// namespace kHeartbeatNs and key HeartbeatKey(spool directory).
constexpr const char* kHeartbeatNs = "heartbeat";
std::string HeartbeatKey(const std::string& spool_dir);

}  // namespace sluice::cli
