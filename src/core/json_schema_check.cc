// JsonSchema: running a compiled schema over a document.
#include <rapidjson/error/en.h>

#include <cmath>
#include <cstring>

#include "core/json.h"
#include "core/json_formats.h"
#include "core/json_schema_internal.h"

namespace sluice {

using namespace schema_internal;  // NOLINT

namespace {

std::string TypeNames(uint8_t types) {
  std::string out;
  const std::pair<uint8_t, const char*> kNames[] = {
      {kNull, "null"},     {kBool, "boolean"},  {kObject, "object"},  {kArray, "array"},
      {kNumber, "number"}, {kString, "string"}, {kInteger, "integer"}};
  for (auto [bit, name] : kNames) {
    if (types & bit) out += (out.empty() ? "" : " or ") + std::string(name);
  }
  return out;
}

bool HasNul(const rapidjson::Value& v) {
  return std::memchr(v.GetString(), 0, v.GetStringLength()) != nullptr;
}

}  // namespace

bool JsonSchema::Impl::Fail(const Node& n, std::string_view keyword, std::string msg,
                            Ctx& ctx) const {
  if (ctx.error != nullptr) {
    std::string where;
    for (const std::string& s : ctx.where) where += "/" + s;
    ctx.error->instance_path = where.empty() ? "/" : where;
    ctx.error->schema_path = n.path + "/" + std::string(keyword);
    ctx.error->message = std::move(msg);
  }
  return false;
}

bool JsonSchema::Impl::Check(const Node& n, const rapidjson::Value& v, Ctx& ctx) const {
  if (n.ref != nullptr) return Check(*n.ref, v, ctx);
  if (n.always_false) return Fail(n, "false", "no value is allowed here", ctx);
  uint8_t t = TypeOf(v);
  if (n.types != 0 && (n.types & t) == 0) {
    return Fail(n, "type", Show(v) + " is not of type " + TypeNames(n.types), ctx);
  }
  if (n.enum_values != nullptr) {
    bool found = false;
    for (auto& e : n.enum_values->GetArray()) found = found || JsonEqual(e, v);
    if (!found) return Fail(n, "enum", Show(v) + " is not one of the allowed values", ctx);
  }
  if (n.const_value != nullptr && !JsonEqual(*n.const_value, v)) {
    return Fail(n, "const", Show(v) + " is not " + Show(*n.const_value), ctx);
  }

  if (t & kString) {
    std::string_view s(v.GetString(), v.GetStringLength());
    // A string has at most one character per byte and at least one per four: most lengths
    // are settled by its size alone, without counting (a long log excerpt would be read).
    bool count = (n.max_length && s.size() > *n.max_length) ||
                 (n.min_length && (s.size() + 3) / 4 < *n.min_length);
    if (count) {
      size_t len = Utf8Length(s);
      if (n.max_length && len > *n.max_length) {
        return Fail(n, "maxLength",
                    "string of " + std::to_string(len) + " characters is longer than " +
                        std::to_string(*n.max_length),
                    ctx);
      }
      if (n.min_length && len < *n.min_length) {
        return Fail(n, "minLength", Show(v) + " is too short", ctx);
      }
    }
    if (n.pattern_kind == PatternKind::kNoNul && HasNul(v)) {
      return Fail(n, "pattern", "string contains a NUL character", ctx);
    }
    if (n.pattern_kind == PatternKind::kRe2 &&
        !RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *n.pattern)) {
      return Fail(n, "pattern", Show(v) + " does not match '" + n.pattern_text + "'", ctx);
    }
    bool bad_format = (n.format == Format::kDateTime && !IsRfc3339DateTime(s)) ||
                      (n.format == Format::kUri && !IsRfc3986Uri(s)) ||
                      (n.format == Format::kEmail && !IsEmail(s));
    if (bad_format) {
      const char* f = n.format == Format::kDateTime ? "date-time"
                      : n.format == Format::kUri    ? "uri"
                                                    : "email";
      return Fail(n, "format", Show(v) + " is not a valid " + std::string(f), ctx);
    }
  }

  if (t & kNumber) {
    double d = v.GetDouble();
    if (n.minimum && d < *n.minimum) return Fail(n, "minimum", Show(v) + " is too small", ctx);
    if (n.maximum && d > *n.maximum) return Fail(n, "maximum", Show(v) + " is too large", ctx);
    if (n.exclusive_minimum && d <= *n.exclusive_minimum) {
      return Fail(n, "exclusiveMinimum", Show(v) + " is too small", ctx);
    }
    if (n.exclusive_maximum && d >= *n.exclusive_maximum) {
      return Fail(n, "exclusiveMaximum", Show(v) + " is too large", ctx);
    }
    if (n.multiple_of) {
      double q = d / *n.multiple_of;
      bool ok = std::isfinite(q) && std::trunc(q) == q;
      if (v.IsInt64() && std::trunc(*n.multiple_of) == *n.multiple_of && *n.multiple_of != 0) {
        ok = v.GetInt64() % static_cast<int64_t>(*n.multiple_of) == 0;
      }
      if (!ok) return Fail(n, "multipleOf", Show(v) + " is not a multiple", ctx);
    }
  }

  if (t & kObject) {
    size_t count = v.MemberCount();
    if (n.min_props && count < *n.min_props) {
      return Fail(n, "minProperties", "too few properties", ctx);
    }
    if (n.max_props && count > *n.max_props) {
      return Fail(n, "maxProperties", "too many properties", ctx);
    }
    for (const std::string& r : n.required) {
      if (!v.HasMember(rapidjson::StringRef(r.data(), r.size()))) {
        return Fail(n, "required", "'" + r + "' is a required property", ctx);
      }
    }
    for (auto& m : v.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      ctx.where.emplace_back(name);
      bool matched = false;
      if (!n.properties.empty()) {
        auto it = n.properties.find(std::string(name));
        if (it != n.properties.end()) {
          matched = true;
          if (!Check(*it->second, m.value, ctx)) return false;
        }
      }
      for (auto& [re, sub] : n.pattern_properties) {
        if (RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *re)) {
          matched = true;
          if (!Check(*sub, m.value, ctx)) return false;
        }
      }
      if (!matched && n.additional_properties != nullptr) {
        if (n.additional_properties->always_false) {
          ctx.where.pop_back();
          return Fail(n, "additionalProperties",
                      "additional property '" + std::string(name) + "' is not allowed", ctx);
        }
        if (!Check(*n.additional_properties, m.value, ctx)) return false;
      }
      if (n.property_names != nullptr && !Quiet(*n.property_names, m.name)) {
        return Fail(n, "propertyNames", "property name '" + std::string(name) + "' is invalid",
                    ctx);
      }
      ctx.where.pop_back();
    }
    for (auto& [name, deps] : n.dep_required) {
      if (!v.HasMember(name.c_str())) continue;
      for (const std::string& d : deps) {
        if (!v.HasMember(d.c_str())) {
          return Fail(n, "dependencies", "'" + d + "' is required by '" + name + "'", ctx);
        }
      }
    }
    for (auto& [name, sub] : n.dep_schemas) {
      if (v.HasMember(name.c_str()) && !Check(*sub, v, ctx)) return false;
    }
  }

  if (t & kArray) {
    rapidjson::SizeType size = v.Size();
    if (n.min_items && size < *n.min_items) return Fail(n, "minItems", "too few items", ctx);
    if (n.max_items && size > *n.max_items) return Fail(n, "maxItems", "too many items", ctx);
    for (rapidjson::SizeType i = 0; i < size; ++i) {
      const Node* sub = nullptr;
      if (n.items_is_tuple) {
        sub = i < n.items_tuple.size() ? n.items_tuple[i] : n.additional_items;
      } else {
        sub = n.items;
      }
      if (sub == nullptr) continue;
      ctx.where.push_back(std::to_string(i));
      if (!Check(*sub, v[i], ctx)) return false;
      ctx.where.pop_back();
    }
    if (n.contains != nullptr) {
      bool any = false;
      for (rapidjson::SizeType i = 0; i < size && !any; ++i) any = Quiet(*n.contains, v[i]);
      if (!any) return Fail(n, "contains", "no item matches 'contains'", ctx);
    }
    if (n.unique_items) {
      for (rapidjson::SizeType i = 0; i < size; ++i) {
        for (rapidjson::SizeType j = i + 1; j < size; ++j) {
          if (JsonEqual(v[i], v[j])) return Fail(n, "uniqueItems", "items are not unique", ctx);
        }
      }
    }
  }

  for (const Node* sub : n.all_of) {
    if (!Check(*sub, v, ctx)) return false;
  }
  if (!n.any_of.empty()) {
    bool any = false;
    for (const Node* sub : n.any_of) {
      if ((any = Quiet(*sub, v))) break;
    }
    if (!any) return Fail(n, "anyOf", Show(v) + " matches none of anyOf", ctx);
  }
  if (!n.one_of.empty()) {
    int matches = 0;
    for (const Node* sub : n.one_of) matches += Quiet(*sub, v) ? 1 : 0;
    if (matches != 1) {
      return Fail(n, "oneOf",
                  Show(v) + " matches " + std::to_string(matches) + " of oneOf, not exactly one",
                  ctx);
    }
  }
  if (n.not_ != nullptr && Quiet(*n.not_, v)) {
    return Fail(n, "not", Show(v) + " must not match 'not'", ctx);
  }
  if (n.if_ != nullptr) {
    if (Quiet(*n.if_, v)) {
      if (n.then_ != nullptr && !Check(*n.then_, v, ctx)) return false;
    } else if (n.else_ != nullptr && !Check(*n.else_, v, ctx)) {
      return false;
    }
  }
  return true;
}

JsonSchema::JsonSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchema::~JsonSchema() = default;

Result<std::unique_ptr<JsonSchema>> JsonSchema::Compile(std::string_view schema_json) {
  auto impl = std::make_unique<Impl>();
  Status parsed = ParseJson(schema_json, &impl->doc);
  if (!parsed.ok()) return parsed.Annotate("schema");
  auto root = impl->Compile(impl->doc, "");
  if (!root.ok()) return root.status();
  impl->root = *root;
  return std::unique_ptr<JsonSchema>(new JsonSchema(std::move(impl)));
}

bool JsonSchema::Validate(const rapidjson::Value& doc, SchemaError* error) const {
  Impl::Ctx ctx{{}, error};
  return impl_->Check(*impl_->root, doc, ctx);
}

}  // namespace sluice
