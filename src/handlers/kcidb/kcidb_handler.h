// The `kcidb` handler: one KCIDB submission file in, rows for checkouts, builds, tests, issues
// and incidents out. Read → parse → validate against the declared version (1.0 … 5.3) →
// upgrade to 5.3 → standardise lab names → offload long log excerpts → rows (tree names
// mapped).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "handlers/handler.h"
#include "handlers/kcidb/tables.h"
#include "handlers/kcidb/trees.h"

namespace sluice::kcidb {

class ExcerptUploader;

struct KcidbOptions {
  std::string trees_file;               // empty: the shipped default
  ExcerptUploader* uploader = nullptr;  // null: excerpts stay inline
  int max_depth = 0;  // deeper documents are refused as too_deep (0: --max-json-depth)
};

class KcidbHandler : public Handler {
 public:
  static Result<std::unique_ptr<KcidbHandler>> Create(const KcidbOptions& options);

  std::string_view kind() const override { return "kcidb"; }
  const std::vector<TableSpec>& tables() const override { return tables_.specs(); }
  Status Run(const HandlerContext& ctx, HandlerOutput* out) override;
  // Rereads the trees file; keeps the current map when the new one is broken.
  Status Reload() override;

  // Processes a submission already in memory (`text` is modified: parsed in place).
  Status Process(std::string* text, int64_t now_micros, HandlerOutput* out);

 private:
  KcidbHandler(KcidbOptions options, Tables tables)
      : options_(std::move(options)), tables_(std::move(tables)) {}
  std::shared_ptr<const TreeMap> trees() const;

  KcidbOptions options_;
  Tables tables_;
  mutable std::mutex trees_mu_;
  std::shared_ptr<const TreeMap> trees_;
};

// Loads a trees file from disk (or the default when `path` is empty).
Result<TreeMap> LoadTrees(const std::string& path);

}  // namespace sluice::kcidb
