// Fuzz target: `git log` output as GitLogParser reads it, a commit's bytes being anyone's.
// The first input byte sets the size of the pieces the rest arrives in; bytes 0x01 and 0x02
// stand for the parser's start and end marker lines (made at random, so the fuzzer could not
// write them).
// Invariants: never a crash; every item is valid JSON (any bytes of a commit, UTF-8 or not);
// the items taken count as many as the parser says it made.
#include <cstdint>
#include <string>

#include "core/json.h"
#include "fuzz/check.h"
#include "handlers/git/git_log.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 64;
  GitLogParser parser("origin", 0, 0);
  std::string format = parser.FormatArg();  // --format=START%n...%nEND
  std::string start = format.substr(9, format.find("%n") - 9);
  std::string end = format.substr(format.rfind("%n") + 2);
  std::string text;
  for (size_t i = 1; i < size; ++i) {
    char c = static_cast<char>(data[i]);
    if (c == '\x01') {
      text += start;
    } else if (c == '\x02') {
      text += end;
    } else {
      text += c;
    }
  }
  size_t taken = 0;
  auto check = [&] {
    for (const TaskItem& item : parser.Take()) {
      rapidjson::Document d;
      FUZZ_CHECK(ParseJson(item.data, &d).ok());
      FUZZ_CHECK(d.IsObject() && d.HasMember("uuid"));
      ++taken;
    }
  };
  Status st;
  for (size_t at = 0; at < text.size() && st.ok(); at += piece) {
    st = parser.Feed(std::string_view(text).substr(at, piece));
    check();
  }
  if (st.ok()) st = parser.Finish();
  check();
  FUZZ_CHECK(taken == static_cast<size_t>(parser.commits()));
  return 0;
}
