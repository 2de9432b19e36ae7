// Fuzz target: `git log` output as GitLogParser reads it, a commit's bytes being anyone's.
// The first input byte sets the size of the pieces the rest arrives in.
// Invariants: never a crash; every item is valid JSON (any bytes of a commit, UTF-8 or not)
// with Perceval's keys; the items taken count as many as the parser says it made.
#include <cstdint>
#include <string>

#include "core/json.h"
#include "fuzz/check.h"
#include "handlers/git/git_log.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 64;
  GitLogParser parser("origin", "", 0, 0, 1);
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t taken = 0;
  auto check = [&] {
    for (const TaskItem& item : parser.Take()) {
      rapidjson::Document d;
      FUZZ_CHECK(ParseJson(item.data, &d).ok());
      FUZZ_CHECK(d.IsObject() && d.HasMember("uuid") && d.HasMember("offset"));
      FUZZ_CHECK(d["data"].IsObject() && d["data"]["files"].IsArray());
      ++taken;
    }
  };
  Status st;
  for (size_t at = 0; at < text.size() && st.ok(); at += piece) {
    st = parser.Feed(text.substr(at, piece));
    check();
  }
  if (st.ok()) st = parser.Finish();
  check();
  FUZZ_CHECK(taken == static_cast<size_t>(parser.commits()));
  return 0;
}
