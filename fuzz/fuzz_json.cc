// Fuzz target: the one reader of untrusted JSON (core/json.h), the UTF-8 rules (core/text.h)
// and the JSON Schema validator (core/json_schema.h, on every shipped KCIDB schema).
//
// Invariants: parsing never crashes; what parses writes back as JSON that parses to the same
// document; a quoted string is valid UTF-8 and reads back as the repaired text; a name that
// passes CheckName is valid UTF-8 without control characters.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/json_schema.h"
#include "core/text.h"
#include "fuzz/check.h"
#include "handlers/kcidb/schemas.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rapidjson::Document doc;
  if (ParseJson(text, &doc, 64).ok()) {
    std::string written = WriteJson(doc);
    FUZZ_CHECK(IsValidUtf8(written));
    rapidjson::Document again;
    FUZZ_CHECK(ParseJson(written, &again, 64).ok());
    FUZZ_CHECK(WriteJson(again) == written);  // keys unique now: the same document
    for (int minor : {0, 3}) {
      auto schema = kcidb::SchemaFor(kcidb::Version{5, minor});
      if (schema.ok()) {
        SchemaError err;
        (void)(*schema)->Validate(doc, &err);
      }
    }
    auto v1 = kcidb::SchemaFor(kcidb::Version{1, 0});
    if (v1.ok()) {
      SchemaError err;
      (void)(*v1)->Validate(doc, &err);
    }
  }
  std::string copy(text);
  copy.push_back('\0');
  rapidjson::Document in_place;
  Status insitu = ParseJsonInsitu(copy.data(), size, &in_place, 64);
  (void)insitu;
  std::string quoted = JsonQuote(text);
  FUZZ_CHECK(IsValidUtf8(quoted));
  rapidjson::Document str;
  FUZZ_CHECK(ParseJson(quoted, &str).ok() && str.IsString());
  FUZZ_CHECK(JsonStr(str) == ValidUtf8(text));
  if (CheckName("name", text).ok()) {
    FUZZ_CHECK(IsValidUtf8(text));
    for (unsigned char c : text) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  }
  return 0;
}
