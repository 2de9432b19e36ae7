// Internals of JsonSchema shared by its compiler (json_schema.cc) and checker
// (json_schema_check.cc). Not part of the public interface.
#pragma once

#include <re2/re2.h>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/json_schema.h"

namespace sluice {
namespace schema_internal {

enum TypeBit : uint8_t {
  kNull = 1,
  kBool = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kString = 32,
  kInteger = 64,
};
enum class Format { kNone, kDateTime, kUri, kEmail };
enum class PatternKind { kNone, kNoNul, kRe2 };

struct Node {
  std::string path;  // schema path, for errors
  bool always_false = false;
  const Node* ref = nullptr;  // when set, the other keywords are ignored (draft 7)
  uint8_t types = 0;          // 0: any
  std::unordered_map<std::string, const Node*> properties;
  std::vector<std::pair<std::unique_ptr<RE2>, const Node*>> pattern_properties;
  const Node* additional_properties = nullptr;
  std::vector<std::string> required;
  const Node* property_names = nullptr;
  std::optional<size_t> min_props, max_props;
  std::map<std::string, std::vector<std::string>> dep_required;
  std::map<std::string, const Node*> dep_schemas;
  const Node* items = nullptr;
  std::vector<const Node*> items_tuple;
  bool items_is_tuple = false;
  const Node* additional_items = nullptr;
  const Node* contains = nullptr;
  std::optional<size_t> min_items, max_items;
  bool unique_items = false;
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;
  std::optional<size_t> min_length, max_length;
  PatternKind pattern_kind = PatternKind::kNone;
  std::unique_ptr<RE2> pattern;
  std::string pattern_text;
  Format format = Format::kNone;
  const rapidjson::Value* enum_values = nullptr;
  const rapidjson::Value* const_value = nullptr;
  std::vector<const Node*> all_of, any_of, one_of;
  const Node* not_ = nullptr;
  const Node* if_ = nullptr;
  const Node* then_ = nullptr;
  const Node* else_ = nullptr;
};

uint8_t TypeOf(const rapidjson::Value& v);
size_t Utf8Length(std::string_view s);
std::string Show(const rapidjson::Value& v, size_t max = 60);

}  // namespace schema_internal

using schema_internal::Node;

struct JsonSchema::Impl {
  rapidjson::Document doc;
  std::deque<Node> nodes;
  std::unordered_map<const rapidjson::Value*, Node*> compiled;
  const Node* root = nullptr;

  Result<const Node*> Compile(const rapidjson::Value& v, const std::string& path);
  Status Fill(Node* n, const rapidjson::Value& v);
  Result<const Node*> Resolve(const std::string& ref, const std::string& path);

  // Validation
  struct Ctx {
    std::vector<std::string> where;  // instance path segments
    SchemaError* error;              // null while checking quietly (anyOf branches, not, …)
  };
  bool Check(const Node& n, const rapidjson::Value& v, Ctx& ctx) const;
  bool Fail(const Node& n, std::string_view keyword, std::string msg, Ctx& ctx) const;
  bool Quiet(const Node& n, const rapidjson::Value& v) const {
    Ctx q{{}, nullptr};
    return Check(n, v, q);
  }
};

}  // namespace sluice
