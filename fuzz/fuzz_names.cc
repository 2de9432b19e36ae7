// Fuzz target: names and times from outside: queuedir item names (ids and retry suffixes),
// spool file names and companions, task ids as file names, request targets, dates.
// Invariants: never a crash; an item's id is a prefix of its name and its retries are not
// negative; a task's file name fits a file name and holds no '/'; a time that is in range
// formats as a date that parses back to it.
#include <cstdint>
#include <string>

#include "api/http_types.h"
#include "broker/redis/redis_conn.h"
#include "core/clock.h"
#include "core/percent.h"
#include "engine/task_scheduler.h"
#include "fuzz/check.h"
#include "spool/queuedir.h"
#include "spool/spool_dir.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  std::string id = QueueDir::BaseId(s);
  FUZZ_CHECK(s.rfind(id, 0) == 0);
  FUZZ_CHECK(QueueDir::Retries(s) >= 0);
  (void)QueueDir::IsItemName(s);
  (void)SpoolDir::IsCandidateName(s);
  (void)SpoolDir::CompanionOf(s, ".dump");
  std::string file = TaskFileName(s);
  FUZZ_CHECK(file.size() + 6 <= 255 && file.find('/') == std::string::npos);
  FUZZ_CHECK(file.empty() || file[0] != '.');
  (void)api::HttpRequest::FromTarget("GET", s);
  (void)PercentDecode(s, true, "a name");
  (void)redis::ParseUrl(s);
  for (auto parse : {ParseTime, ParseLooseTime}) {
    auto t = parse(s);
    if (t.ok() && CheckTime("t", *t).ok()) {
      auto back = ParseTime(FormatTime(*t));
      FUZZ_CHECK(back.ok() && *back == *t);
    }
  }
  return 0;
}
