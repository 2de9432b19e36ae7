// Fuzz target: the one reader of untrusted JSON (core/json.h), the UTF-8 rules (core/text.h)
// and the JSON Schema validator (core/json_schema.h, on every shipped KCIDB schema).
//
// Invariants: parsing never crashes; what parses writes back as JSON that parses to the same
// document; a quoted string is valid UTF-8 and reads back as the repaired text; a name that
// passes CheckName is valid UTF-8 without control characters.
#include <algorithm>
#include <cmath>
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

namespace {

// The same document, member by member in order; doubles within a few units in the last place
// (reading is not exact: the writer prints the shortest form that reads back exactly only
// under an exact reader).
bool Same(const rapidjson::Value& a, const rapidjson::Value& b) {
  std::vector<std::pair<const rapidjson::Value*, const rapidjson::Value*>> todo{{&a, &b}};
  while (!todo.empty()) {
    auto [x, y] = todo.back();
    todo.pop_back();
    if (x->IsNumber() && y->IsNumber()) {
      if (x->IsDouble() || y->IsDouble()) {
        double p = x->GetDouble(), q = y->GetDouble();
        if (p != q && std::fabs(p - q) > 1e-13 * std::max(std::fabs(p), std::fabs(q))) return false;
      } else if (!(*x == *y)) {
        return false;
      }
      continue;
    }
    if (x->GetType() != y->GetType()) return false;
    if (x->IsString() && JsonView(*x) != JsonView(*y)) return false;
    if (x->IsArray()) {
      if (x->Size() != y->Size()) return false;
      for (rapidjson::SizeType i = 0; i < x->Size(); ++i) todo.emplace_back(&(*x)[i], &(*y)[i]);
    }
    if (x->IsObject()) {
      if (x->MemberCount() != y->MemberCount()) return false;
      for (auto m = x->MemberBegin(), n = y->MemberBegin(); m != x->MemberEnd(); ++m, ++n) {
        if (JsonView(m->name) != JsonView(n->name)) return false;
        todo.emplace_back(&m->value, &n->value);
      }
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rapidjson::Document doc;
  bool parsed = ParseJson(text, &doc, 64).ok();
  if (parsed) {
    std::string written = WriteJson(doc);
    FUZZ_CHECK(IsValidUtf8(written));
    rapidjson::Document again;
    FUZZ_CHECK(ParseJson(written, &again, 64).ok());
    FUZZ_CHECK(Same(again, doc));
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
  copy.shrink_to_fit();  // no slack after it: a read past the end is a finding
  rapidjson::Document in_place;
  Status insitu = ParseJsonInsitu(&copy, &in_place, 64);
  FUZZ_CHECK(insitu.ok() == parsed);  // in place or not, the same verdict
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
