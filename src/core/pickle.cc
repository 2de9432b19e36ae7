// JsonToPickle: a RapidJSON document walked into pickle opcodes.
#include "core/pickle.h"

#include <rapidjson/document.h>

#include <cstring>

#include "core/json.h"

namespace sluice {
namespace {

// The opcodes used (Python's Lib/pickletools.py names them).
constexpr char kProto = '\x80', kStop = '.', kMark = '(', kEmptyDict = '}', kSetItems = 'u',
               kEmptyList = ']', kAppends = 'e', kBinUnicode = 'X', kBinFloat = 'G', kBinInt = 'J',
               kLong1 = '\x8a', kNone = 'N', kTrue = '\x88', kFalse = '\x89';

void Little(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Str(std::string* out, std::string_view s) {
  out->push_back(kBinUnicode);
  Little(out, s.size(), 4);
  out->append(s);
}

void Int(std::string* out, int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out->push_back(kBinInt);
    Little(out, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    return;
  }
  out->push_back(kLong1);  // eight bytes of two's complement, little-endian
  out->push_back(8);
  Little(out, static_cast<uint64_t>(v), 8);
}

void Float(std::string* out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  out->push_back(kBinFloat);
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void Value(std::string* out, const rapidjson::Value& v) {
  if (v.IsObject()) {
    out->push_back(kEmptyDict);
    if (v.MemberCount() == 0) return;
    out->push_back(kMark);
    for (auto& m : v.GetObject()) {
      Str(out, JsonView(m.name));
      Value(out, m.value);
    }
    out->push_back(kSetItems);
  } else if (v.IsArray()) {
    out->push_back(kEmptyList);
    if (v.Empty()) return;
    out->push_back(kMark);
    for (auto& e : v.GetArray()) Value(out, e);
    out->push_back(kAppends);
  } else if (v.IsString()) {
    Str(out, JsonView(v));
  } else if (v.IsInt64()) {
    Int(out, v.GetInt64());
  } else if (v.IsNumber()) {
    Float(out, v.GetDouble());  // an unsigned past int64 too, as Python's json would not
  } else if (v.IsBool()) {
    out->push_back(v.GetBool() ? kTrue : kFalse);
  } else {
    out->push_back(kNone);
  }
}

}  // namespace

Result<std::string> JsonToPickle(std::string_view json) {
  rapidjson::Document d;
  SLUICE_RETURN_IF_ERROR(ParseJson(json, &d));
  std::string out = {kProto, '\x02'};
  Value(&out, d);
  out.push_back(kStop);
  return out;
}

}  // namespace sluice
