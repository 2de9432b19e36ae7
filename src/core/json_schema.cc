// JsonSchema: compilation of a draft-7 schema into Nodes, and validation.
#include "core/json_schema.h"

#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <re2/re2.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/json_formats.h"
#include "core/json_schema_internal.h"

namespace sluice {
namespace schema_internal {

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool IsInteger(const rapidjson::Value& v) {
  if (v.IsInt64() || v.IsUint64()) return true;
  if (!v.IsDouble()) return false;
  double d = v.GetDouble();
  return std::isfinite(d) && std::floor(d) == d;
}

uint8_t TypeOf(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return kNull;
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return kBool;
    case rapidjson::kObjectType:
      return kObject;
    case rapidjson::kArrayType:
      return kArray;
    case rapidjson::kStringType:
      return kString;
    case rapidjson::kNumberType:
      return IsInteger(v) ? (kNumber | kInteger) : kNumber;
  }
  return 0;
}

Result<uint8_t> TypeBitFor(std::string_view name) {
  if (name == "null") return uint8_t{kNull};
  if (name == "boolean") return uint8_t{kBool};
  if (name == "object") return uint8_t{kObject};
  if (name == "array") return uint8_t{kArray};
  if (name == "number") return uint8_t{kNumber};
  if (name == "string") return uint8_t{kString};
  if (name == "integer") return uint8_t{kInteger};
  return Status::InvalidArgument("unknown type '" + std::string(name) + "'");
}

std::string Show(const rapidjson::Value& v, size_t max) {
  if (v.IsString()) {
    std::string s(v.GetString(), v.GetStringLength());
    if (s.size() > max) s = s.substr(0, max) + "…";
    return "'" + s + "'";
  }
  if (v.IsNumber()) {
    if (v.IsInt64()) return std::to_string(v.GetInt64());
    if (v.IsUint64()) return std::to_string(v.GetUint64());
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%g", v.GetDouble());
    return buf;
  }
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsNull()) return "null";
  return v.IsObject() ? "an object" : "an array";
}

}  // namespace schema_internal

using namespace schema_internal;  // NOLINT

std::string TranslatePattern(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      if (n == '0' && (i + 2 >= p.size() || p[i + 2] < '0' || p[i + 2] > '7')) {
        out += "\\x00";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '$') {
      out += "(?:\\n?\\z)";  // Python: end of string, or before a final newline
      continue;
    }
    out += c;
  }
  return out;
}

bool JsonEqual(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
    if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
    return a.GetDouble() == b.GetDouble();
  }
  uint8_t ta = TypeOf(a), tb = TypeOf(b);
  if (ta != tb) return false;
  if (a.IsBool()) return a.GetBool() == b.GetBool();
  if (a.IsNull()) return true;
  if (a.IsString()) {
    return a.GetStringLength() == b.GetStringLength() &&
           std::memcmp(a.GetString(), b.GetString(), a.GetStringLength()) == 0;
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!JsonEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.MemberCount() != b.MemberCount()) return false;
  for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
    auto other = b.FindMember(it->name);
    if (other == b.MemberEnd() || !JsonEqual(it->value, other->value)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Compilation

Result<const Node*> JsonSchema::Impl::Compile(const rapidjson::Value& v, const std::string& path) {
  auto it = compiled.find(&v);
  if (it != compiled.end()) return it->second;
  Node* n = &nodes.emplace_back();
  n->path = path;
  compiled[&v] = n;
  if (v.IsBool()) {
    n->always_false = !v.GetBool();
    return n;
  }
  if (!v.IsObject()) return Status::InvalidArgument("schema at " + path + " is not an object");
  Status st = Fill(n, v);
  if (!st.ok()) return st;
  return n;
}

Result<const Node*> JsonSchema::Impl::Resolve(const std::string& ref, const std::string& path) {
  if (ref.empty() || ref[0] != '#') {
    return Status::InvalidArgument("unsupported remote $ref '" + ref + "' at " + path);
  }
  // JSON pointer, percent-decoded.
  std::string pointer;
  for (size_t i = 1; i < ref.size(); ++i) {
    if (ref[i] == '%' && i + 2 < ref.size()) {
      pointer += static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      pointer += ref[i];
    }
  }
  rapidjson::Pointer p(pointer.c_str(), pointer.size());
  if (!p.IsValid()) return Status::InvalidArgument("bad $ref '" + ref + "' at " + path);
  const rapidjson::Value* target = p.Get(doc);
  if (target == nullptr) return Status::InvalidArgument("unresolvable $ref '" + ref + "'");
  return Compile(*target, pointer.empty() ? "" : pointer);
}

Status JsonSchema::Impl::Fill(Node* n, const rapidjson::Value& v) {
  const std::string& path = n->path;
  auto sub = [&](const char* key, const rapidjson::Value& s) -> Result<const Node*> {
    return Compile(s, path + "/" + key);
  };
  auto size_kw = [&](const char* key, std::optional<size_t>* out) -> Status {
    auto it = v.FindMember(key);
    if (it == v.MemberEnd()) return Status::Ok();
    if (!it->value.IsNumber() || it->value.GetDouble() < 0) {
      return Status::InvalidArgument(std::string(key) + " at " + path + " must be >= 0");
    }
    *out = static_cast<size_t>(it->value.GetDouble());
    return Status::Ok();
  };
  auto num_kw = [&](const char* key, std::optional<double>* out) -> Status {
    auto it = v.FindMember(key);
    if (it == v.MemberEnd()) return Status::Ok();
    if (!it->value.IsNumber()) {
      return Status::InvalidArgument(std::string(key) + " at " + path + " must be a number");
    }
    *out = it->value.GetDouble();
    return Status::Ok();
  };
  auto list_kw = [&](const char* key, std::vector<const Node*>* out) -> Status {
    auto it = v.FindMember(key);
    if (it == v.MemberEnd()) return Status::Ok();
    if (!it->value.IsArray() || it->value.Empty()) {
      return Status::InvalidArgument(std::string(key) + " at " + path + " must be a list");
    }
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      auto c = Compile(it->value[i], path + "/" + key + "/" + std::to_string(i));
      if (!c.ok()) return c.status();
      out->push_back(*c);
    }
    return Status::Ok();
  };

  if (v.HasMember("$id") && v["$id"].IsString() && v["$id"].GetStringLength() > 0 &&
      v["$id"].GetString()[0] != '#') {
    return Status::InvalidArgument("$id-based resolution is not supported (at " + path + ")");
  }
  if (auto it = v.FindMember("$ref"); it != v.MemberEnd() && it->value.IsString()) {
    auto r = Resolve(it->value.GetString(), path);
    if (!r.ok()) return r.status();
    n->ref = *r;
    return Status::Ok();  // draft 7: siblings of $ref are ignored
  }
  if (auto it = v.FindMember("type"); it != v.MemberEnd()) {
    auto add = [&](const rapidjson::Value& t) -> Status {
      if (!t.IsString()) return Status::InvalidArgument("type at " + path + " must be a string");
      auto bit = TypeBitFor(t.GetString());
      if (!bit.ok()) return bit.status();
      n->types |= *bit;
      return Status::Ok();
    };
    if (it->value.IsArray()) {
      for (auto& t : it->value.GetArray()) SLUICE_RETURN_IF_ERROR(add(t));
      if (it->value.Empty()) n->types = 0x80;  // matches nothing
    } else {
      SLUICE_RETURN_IF_ERROR(add(it->value));
    }
  }
  if (auto it = v.FindMember("enum"); it != v.MemberEnd()) {
    if (!it->value.IsArray()) return Status::InvalidArgument("enum at " + path + " not a list");
    n->enum_values = &it->value;
  }
  if (auto it = v.FindMember("const"); it != v.MemberEnd()) n->const_value = &it->value;
  if (auto it = v.FindMember("properties"); it != v.MemberEnd() && it->value.IsObject()) {
    for (auto& m : it->value.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      auto c = Compile(m.value, path + "/properties/" + name);
      if (!c.ok()) return c.status();
      n->properties[name] = *c;
    }
  }
  if (auto it = v.FindMember("patternProperties"); it != v.MemberEnd() && it->value.IsObject()) {
    for (auto& m : it->value.GetObject()) {
      RE2::Options opts;
      opts.set_log_errors(false);
      auto re = std::make_unique<RE2>(TranslatePattern(m.name.GetString()), opts);
      if (!re->ok()) return Status::InvalidArgument("bad patternProperties regex at " + path);
      auto c = Compile(m.value, path + "/patternProperties/" + m.name.GetString());
      if (!c.ok()) return c.status();
      n->pattern_properties.emplace_back(std::move(re), *c);
    }
  }
  if (auto it = v.FindMember("additionalProperties"); it != v.MemberEnd()) {
    auto c = sub("additionalProperties", it->value);
    if (!c.ok()) return c.status();
    n->additional_properties = *c;
  }
  if (auto it = v.FindMember("required"); it != v.MemberEnd() && it->value.IsArray()) {
    for (auto& r : it->value.GetArray()) {
      if (r.IsString()) n->required.emplace_back(r.GetString(), r.GetStringLength());
    }
  }
  if (auto it = v.FindMember("propertyNames"); it != v.MemberEnd()) {
    auto c = sub("propertyNames", it->value);
    if (!c.ok()) return c.status();
    n->property_names = *c;
  }
  if (auto it = v.FindMember("dependencies"); it != v.MemberEnd() && it->value.IsObject()) {
    for (auto& m : it->value.GetObject()) {
      std::string name = m.name.GetString();
      if (m.value.IsArray()) {
        for (auto& r : m.value.GetArray()) {
          if (r.IsString()) n->dep_required[name].push_back(r.GetString());
        }
        n->dep_required.try_emplace(name);
      } else {
        auto c = Compile(m.value, path + "/dependencies/" + name);
        if (!c.ok()) return c.status();
        n->dep_schemas[name] = *c;
      }
    }
  }
  if (auto it = v.FindMember("items"); it != v.MemberEnd()) {
    if (it->value.IsArray()) {
      n->items_is_tuple = true;
      for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
        auto c = Compile(it->value[i], path + "/items/" + std::to_string(i));
        if (!c.ok()) return c.status();
        n->items_tuple.push_back(*c);
      }
    } else {
      auto c = sub("items", it->value);
      if (!c.ok()) return c.status();
      n->items = *c;
    }
  }
  for (auto [key, out] :
       {std::pair{"additionalItems", &n->additional_items}, std::pair{"contains", &n->contains},
        std::pair{"not", &n->not_}, std::pair{"if", &n->if_}, std::pair{"then", &n->then_},
        std::pair{"else", &n->else_}}) {
    if (auto it = v.FindMember(key); it != v.MemberEnd()) {
      auto c = sub(key, it->value);
      if (!c.ok()) return c.status();
      *out = *c;
    }
  }
  if (auto it = v.FindMember("uniqueItems"); it != v.MemberEnd() && it->value.IsBool()) {
    n->unique_items = it->value.GetBool();
  }
  SLUICE_RETURN_IF_ERROR(size_kw("minProperties", &n->min_props));
  SLUICE_RETURN_IF_ERROR(size_kw("maxProperties", &n->max_props));
  SLUICE_RETURN_IF_ERROR(size_kw("minItems", &n->min_items));
  SLUICE_RETURN_IF_ERROR(size_kw("maxItems", &n->max_items));
  SLUICE_RETURN_IF_ERROR(size_kw("minLength", &n->min_length));
  SLUICE_RETURN_IF_ERROR(size_kw("maxLength", &n->max_length));
  SLUICE_RETURN_IF_ERROR(num_kw("minimum", &n->minimum));
  SLUICE_RETURN_IF_ERROR(num_kw("maximum", &n->maximum));
  SLUICE_RETURN_IF_ERROR(num_kw("exclusiveMinimum", &n->exclusive_minimum));
  SLUICE_RETURN_IF_ERROR(num_kw("exclusiveMaximum", &n->exclusive_maximum));
  SLUICE_RETURN_IF_ERROR(num_kw("multipleOf", &n->multiple_of));
  SLUICE_RETURN_IF_ERROR(list_kw("allOf", &n->all_of));
  SLUICE_RETURN_IF_ERROR(list_kw("anyOf", &n->any_of));
  SLUICE_RETURN_IF_ERROR(list_kw("oneOf", &n->one_of));
  if (auto it = v.FindMember("pattern"); it != v.MemberEnd() && it->value.IsString()) {
    n->pattern_text = it->value.GetString();
    if (n->pattern_text == "^[^\\0]*$") {
      n->pattern_kind = PatternKind::kNoNul;
    } else {
      RE2::Options opts;
      opts.set_log_errors(false);
      n->pattern = std::make_unique<RE2>(TranslatePattern(n->pattern_text), opts);
      if (!n->pattern->ok()) {
        return Status::InvalidArgument("pattern '" + n->pattern_text + "' at " + path +
                                       " is not supported: " + n->pattern->error());
      }
      n->pattern_kind = PatternKind::kRe2;
    }
  }
  if (auto it = v.FindMember("format"); it != v.MemberEnd() && it->value.IsString()) {
    std::string_view f = it->value.GetString();
    if (f == "date-time") n->format = Format::kDateTime;
    if (f == "uri") n->format = Format::kUri;
    if (f == "email") n->format = Format::kEmail;
  }
  return Status::Ok();
}

}  // namespace sluice
