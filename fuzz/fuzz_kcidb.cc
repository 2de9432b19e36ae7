// Fuzz target: a KCIDB submission through the whole kcidb handler without a database:
// parse, declared version, validation, upgrade of old versions to 5.3, tree and lab names,
// rows. Invariants: never a crash; a failure always carries an error code.
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz/check.h"
#include "handlers/kcidb/kcidb_handler.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<kcidb::KcidbHandler> handler = [] {
    auto h = kcidb::KcidbHandler::Create(kcidb::KcidbOptions{});
    FUZZ_CHECK(h.ok());
    return std::move(*h);
  }();
  std::string text(reinterpret_cast<const char*>(data), size);
  HandlerOutput out;
  Status st = handler->Process(&text, 1'800'000'000'000'000, &out);
  if (!st.ok()) FUZZ_CHECK(!out.error_code.empty());
  for (const ObjectRow& row : out.rows) {
    FUZZ_CHECK(row.table >= 0 && static_cast<size_t>(row.table) < handler->tables().size());
  }
  return 0;
}
