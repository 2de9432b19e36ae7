// Commands that ask a running daemon through its HTTP API: `sluice priority` and
// `sluice promote`. They need the daemon (the queue lives in it); --api names it.
#pragma once

#include <string>

namespace sluice::cli {

struct RemoteFlags {
  std::string api = "http://127.0.0.1:8080";
  std::string token;  // or SLUICE_API_TOKEN
};

// `sluice priority NAME|ID`: prints what the daemon did; exit 3 when it knows no such thing.
int RunPriority(const RemoteFlags& flags, const std::string& what);
// `sluice promote NAME|--all`.
int RunPromote(const RemoteFlags& flags, const std::string& name, bool all);

}  // namespace sluice::cli
