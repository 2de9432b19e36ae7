// sluice migrate.
#include "cli/migrate.h"

#include <cstdio>

#include "cli/commands.h"
#include "store/schema.h"

namespace sluice::cli {

int RunMigrate(const std::string& database, const StoreOptions& store, bool check) {
  auto report = check ? CheckSchema(database, store) : MigrateSchema(database, store);
  if (!report.ok()) return ExitCode(report.status());
  std::printf("schema version %d (this sluice: %d)\n", report->version, report->latest);
  for (const std::string& m : report->applied) std::printf("applied %s\n", m.c_str());
  if (check) {
    if (report->version > report->latest) {
      return ExitCode(RefuseNewer(report->version, report->latest, DescribeStore(database, store)));
    }
    for (const std::string& m : report->pending) std::printf("pending %s\n", m.c_str());
    if (!report->pending.empty()) return 1;
  }
  std::printf("up to date\n");
  return 0;
}

}  // namespace sluice::cli
