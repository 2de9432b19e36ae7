// sluice migrate.
#include "cli/migrate.h"

#include <cstdio>

#include "cli/commands.h"
#include "handlers/kcidb/kcidb_handler.h"
#include "store/migrate_store.h"
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

int RunMigrateStore(const std::string& from, const std::string& to, const StoreOptions& store,
                    bool append, int chunk) {
  MigrateStoreOptions o;
  o.chunk = chunk;
  o.from = from;
  o.to = to;
  o.to_options = store;
  o.append = append;
  auto kcidb = kcidb::KcidbHandler::Create({});
  if (!kcidb.ok()) return ExitCode(kcidb.status());
  o.object_tables = (*kcidb)->tables();
  std::printf("copying %s to %s\n", DescribeStore(from, store).c_str(),
              DescribeStore(to, store).c_str());
  auto counts = MigrateStore(o, [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  });
  if (!counts.ok()) return ExitCode(counts.status());
  std::printf("%-12s %12s %12s\n", "TABLE", "SOURCE", "TARGET");
  bool match = true;
  for (const TableCount& c : *counts) {
    bool ok = append ? c.target >= c.source : c.target == c.source;
    match = match && ok;
    std::printf("%-12s %12lld %12lld%s\n", c.table.c_str(), static_cast<long long>(c.source),
                static_cast<long long>(c.target), ok ? "" : "  MISMATCH");
  }
  std::printf(match ? "every count matches\n" : "counts differ\n");
  return match ? 0 : 1;
}

}  // namespace sluice::cli
