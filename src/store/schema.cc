// Schema versions: the common part.
#include "store/schema.h"

namespace sluice {

const std::string& UnendedStatesSql() {
  static const std::string list = [] {
    std::string out;
    for (JobState s : kAllJobStates) {
      if (!IsFinal(s)) out += (out.empty() ? "('" : ", '") + std::string(StateName(s)) + "'";
    }
    return out + ")";
  }();
  return list;
}

std::string StatesSql(const std::vector<JobState>& states) {
  std::string out;
  for (JobState s : states) {
    out += (out.empty() ? "(state='" : " OR state='") + std::string(StateName(s)) + "'";
  }
  return out.empty() ? "(1=0)" : out + ")";
}

Status RefuseNewer(int version, int latest, const std::string& database) {
  return Status::FailedPrecondition(
      database + " has schema version " + std::to_string(version) + ", newer than this sluice (" +
      std::to_string(latest) + "): it was written by a newer release; run that one (or newer)");
}

}  // namespace sluice
